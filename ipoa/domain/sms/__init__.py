"""Text messages to professionals, one job per module.

An SMS travels in clear text over networks and lands on phones that are shared, lost and read on lock
screens, so nothing that identifies a patient may ever be in one (docs/domain.md, "SMS to
professionals"). The guarantee is built here, not left to whoever writes a template:

* Templates can refer only to the fields in ``fields.ALLOWED_FIELDS``, and only as plain ``{{ field }}``:
  no attribute or item access, filters, tests, conditions or loops. A template is therefore its own
  literal text plus the field values, so rendering it once with every field at its longest allowed
  value gives the true worst case, and loading can promise that no message will ever exceed one
  segment (160 GSM-7 characters).
* Every field value is checked against a narrow format when rendering (a reference, a service code,
  a time, a link to the secure page...). A name, NHS number or postcode passed by mistake does not
  match any of them, so it is refused rather than sent, and errors never echo the refused value.
* Replies are parsed into a command, a reference and (for DECLINE) a reason; acting on them, and
  checking that the sender may act on that referral, belongs to the service layer.

Modules:
  encoding     the GSM-7 alphabet, septet length and segment counting
  references   call references as a professional types them
  timetext     times as a professional reads them (Europe/London)
  links        the short codes that secure-page links carry
  fields       the fields a template may use, and the format each value must have
  templates    loading (with the start-up length check) and rendering
  replies      parsing a professional's reply
  recipients   who is told what
  delivery     a message's delivery status, and trying again
  escalation   escalation texts: limits, digests

Pure: jinja2 only, no Flask, SQLAlchemy, Redis or Twilio (tests/unit/test_sms_templates.py checks).
The package holds no names of its own: import from the module that says what it holds.
"""
