"""Call control: supervisor and operator actions carried out by the PBX (pause, queue
membership, listen/whisper/barge, click-to-call) and the missed-calls worklist."""
