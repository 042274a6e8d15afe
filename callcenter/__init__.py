"""callcenter: a self-hosted CRM for call centres, integrated with Asterisk telephony."""
