"""Telephony (Twilio Voice, issue 15): each centre's phone line as configured in the directory
(centre_voice.py), the answer a ringing call gets (answers.py) and what a phone leg's end means
(legs.py). Pure: the TwiML is rendered at the edge (ipoa/web/twiml.py). docs/telephony.md."""
