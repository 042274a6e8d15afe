"""Call events posted over HTTP by PBXs that are not Asterisk (cloud PBXs): docs/webhook.md."""
