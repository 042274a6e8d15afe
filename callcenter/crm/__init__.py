"""The client card: timeline, tags, segments, ABC ranking, personal-data policy, audit reader."""
