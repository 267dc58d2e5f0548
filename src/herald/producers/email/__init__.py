"""Email as an interface: reading emails (:mod:`.parse`), taking them into conversations (:mod:`.intake`), and
reading websites' contact-form notifications with their intent (:mod:`.forms`, :mod:`.intents`)."""
