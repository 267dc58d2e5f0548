"""The template library Herald ships: event types, what each one means, the variables its audience supplies,
sample values, and the default text per (channel, locale).

This is data, kept in Python so it is typed, packaged with Herald without package-data rules, and checked by the
unit tests (every default parses, uses only its event type's variables and built-ins, and renders with the
samples). The first pack is seed 004's power-equipment dealership: its ten scheduled rules (seasonal reminders
split into spring and winterization), its contact-form auto-responses for sales and service, and the
transactional messages around them. A tenant overrides any of these through ``/api/v1/templates``, or writes
templates for event types of its own.

SMS texts stay within one or two segments with typical values; emails carry a subject and a few short
paragraphs. Locales are BCP 47 tags; Herald ships ``en`` and resolves ``en-GB`` or ``en-US`` to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_LOCALE = "en"


@dataclass(frozen=True, slots=True)
class Text:
    """One default: ``subject`` for email only, ``body`` for every channel."""

    body: str
    subject: str | None = None


@dataclass(frozen=True, slots=True)
class EventType:
    """What a message is about. ``variables`` are what a campaign's audience row supplies (plus Herald's
    built-ins: date, time, weekday...); ``sample`` holds a realistic value for each, used for previews and tests;
    ``texts`` maps (channel, locale) to the default."""

    name: str
    description: str
    variables: tuple[str, ...]
    sample: dict[str, str]
    texts: dict[tuple[str, str], Text] = field(default_factory=dict)


_COMMON = ("first_name", "dealership_name", "dealership_phone")
_COMMON_SAMPLE = {"first_name": "Dana", "dealership_name": "Riverside Power Equipment",
                  "dealership_phone": "(555) 010-2300"}  # fmt: skip
_SIGNATURE = "\n\n{{ dealership_name }}\n{{ dealership_phone }}\n"


def _event(
    name: str, description: str, extra: dict[str, str], sms: str, subject: str, email: str
) -> EventType:
    return EventType(
        name=name,
        description=description,
        variables=(*_COMMON, *extra),
        sample={**_COMMON_SAMPLE, **extra},
        texts={
            ("sms", DEFAULT_LOCALE): Text(body=sms),
            ("email", DEFAULT_LOCALE): Text(subject=subject, body=email + _SIGNATURE),
        },
    )


EVENT_TYPES: tuple[EventType, ...] = (
    _event(
        "seven_day_checkin",
        "A check-in seven days after a purchase: is the new machine running well, any questions?",
        {"equipment_model": "Husqvarna YTH18542", "purchase_date": "2026-03-02"},
        "Hi {{ first_name }}, it's {{ dealership_name }}. How is your new {{ equipment_model }} running? "
        "Questions? Call {{ dealership_phone }}.",
        "How is your new {{ equipment_model }}?",
        "Hi {{ first_name }},\n\n"
        "You picked up your {{ equipment_model }} a week ago, and we wanted to check in. Is it starting easily "
        "and running the way you expected?\n\n"
        "If anything is unclear, from the first oil change to storing fuel, reply to this email or call us: "
        "we are happy to walk you through it.\n\nThank you for buying from us.",
    ),
    _event(
        "post_service_survey",
        "A short survey 48 to 72 hours after a customer picks up serviced equipment.",
        {
            "equipment_model": "Stihl MS 250",
            "work_order_number": "WO-10482",
            "survey_url": "https://example.com/s/abc",
        },
        "Hi {{ first_name }}, thanks for trusting {{ dealership_name }} with your {{ equipment_model }}. "
        "How did we do? {{ survey_url }}",
        "How was your service visit?",
        "Hi {{ first_name }},\n\n"
        "Thank you for bringing your {{ equipment_model }} to us (work order {{ work_order_number }}). "
        "We would love to hear how it went: the survey takes under a minute.\n\n{{ survey_url }}\n\n"
        "If the machine is not running right, reply to this email and our service team will make it right.",
    ),
    _event(
        "annual_tuneup",
        "A tune-up reminder 14 days before the purchase anniversary.",
        {
            "equipment_model": "Toro TimeCutter 42",
            "anniversary_date": "2026-04-15",
            "booking_url": "https://example.com/book",
        },
        "Hi {{ first_name }}, your {{ equipment_model }} turns one year older on {{ anniversary_date }}. "
        "Time for a tune-up: {{ booking_url }}",
        "Your {{ equipment_model }} is due for its annual tune-up",
        "Hi {{ first_name }},\n\n"
        "Your {{ equipment_model }} reaches another year of service on {{ anniversary_date }}. An annual "
        "tune-up (oil, filters, spark plug, blade or chain, and a full safety check) keeps it starting first "
        "time and adds years to its life.\n\nBook a slot that suits you: {{ booking_url }}",
    ),
    _event(
        "spring_reminder",
        "The March reminder to get equipment ready for the mowing season.",
        {"equipment_model": "Honda HRX217", "booking_url": "https://example.com/book"},
        "Hi {{ first_name }}, spring is here! Get your {{ equipment_model }} season-ready at "
        "{{ dealership_name }}: {{ booking_url }} Reply STOP to opt out.",
        "Get your {{ equipment_model }} ready for spring",
        "Hi {{ first_name }},\n\n"
        "The mowing season is around the corner. A spring service (fresh oil, a sharp blade, new spark plug, "
        "clean air filter and fresh fuel) means your {{ equipment_model }} starts on the first pull.\n\n"
        "Our spring slots fill quickly: book yours at {{ booking_url }}",
    ),
    _event(
        "winterization_reminder",
        "The October reminder to prepare equipment for winter storage.",
        {"equipment_model": "Husqvarna YTH18542", "booking_url": "https://example.com/book"},
        "Hi {{ first_name }}, before you store your {{ equipment_model }} for winter, let "
        "{{ dealership_name }} winterize it: {{ booking_url }} Reply STOP to opt out.",
        "Protect your {{ equipment_model }} this winter",
        "Hi {{ first_name }},\n\n"
        "Fuel left in a carburettor over winter is the most common reason machines will not start in spring. "
        "Our winterization service stabilises or drains the fuel, changes the oil, protects the battery and "
        "checks for wear, so your {{ equipment_model }} is ready when you are.\n\n"
        "Book before the first frost: {{ booking_url }}",
    ),
    _event(
        "ghost_customer_winback",
        "A win-back message to customers with no purchase or service for 12 months or more.",
        {"months_inactive": "14", "offer_code": "WELCOME10"},
        "Hi {{ first_name }}, we miss you at {{ dealership_name }}! Show code {{ offer_code }} for 10% off your "
        "next service. Reply STOP to opt out.",
        "We miss you, {{ first_name }}",
        "Hi {{ first_name }},\n\n"
        "It has been {{ months_inactive }} months since we last saw you, and we would love to welcome you "
        "back. Whether it is a service, parts or a new machine, use code {{ offer_code }} for 10% off your "
        "next visit.\n\nWe hope to see you soon.",
    ),
    _event(
        "anniversary_offer",
        "A celebration of the purchase anniversary, with an offer.",
        {"equipment_model": "Stihl MS 250", "years_owned": "3", "offer_code": "THANKS15"},
        "Happy {{ years_owned }}-year anniversary with your {{ equipment_model }}, {{ first_name }}! "
        "Code {{ offer_code }} saves 15% at {{ dealership_name }}. Reply STOP to opt out.",
        "Happy anniversary, {{ first_name }}: a thank-you from {{ dealership_name }}",
        "Hi {{ first_name }},\n\n"
        "{{ years_owned }} years ago you took home your {{ equipment_model }}. Thank you for being our "
        "customer all this time.\n\n"
        "To celebrate, use code {{ offer_code }} for 15% off parts, accessories or service this month.",
    ),
    _event(
        "warranty_expiration",
        "A warning 30 days before a machine's warranty expires.",
        {
            "equipment_model": "Toro TimeCutter 42",
            "warranty_end_date": "2026-05-01",
            "booking_url": "https://example.com/book",
        },
        "Hi {{ first_name }}, the warranty on your {{ equipment_model }} ends {{ warranty_end_date }}. "
        "Book a free inspection first: {{ booking_url }}",
        "Your {{ equipment_model }} warranty ends on {{ warranty_end_date }}",
        "Hi {{ first_name }},\n\n"
        "The manufacturer's warranty on your {{ equipment_model }} ends on {{ warranty_end_date }}. Anything "
        "covered must be reported before then, so we recommend an inspection now: we will check it over and "
        "file any claim for you.\n\nBook an inspection: {{ booking_url }}\n\n"
        "Ask us too about extended protection plans.",
    ),
    _event(
        "trade_in_alert",
        "A trade-in suggestion for equipment 8 or more years old with 3 or more repairs.",
        {"equipment_model": "Craftsman T110", "equipment_age_years": "9", "repair_count": "4"},
        "Hi {{ first_name }}, your {{ equipment_model }} has served you {{ equipment_age_years }} years. "
        "Ask {{ dealership_name }} about a trade-in value. Reply STOP to opt out.",
        "Is it time to retire your {{ equipment_model }}?",
        "Hi {{ first_name }},\n\n"
        "Your {{ equipment_model }} has worked hard for {{ equipment_age_years }} years and has needed "
        "{{ repair_count }} repairs along the way. Newer models use less fuel, run quieter and cost less to "
        "keep running.\n\n"
        "We would be glad to give you a trade-in value on your current machine, with no obligation. Reply to "
        "this email or call us to arrange it.",
    ),
    _event(
        "first_service_alert",
        "The first-service reminder once a new machine reaches 20 machine hours.",
        {
            "equipment_model": "Kubota BX2380",
            "machine_hours": "22",
            "booking_url": "https://example.com/book",
        },
        "Hi {{ first_name }}, your {{ equipment_model }} has reached {{ machine_hours }} hours: time for its "
        "first service. Book: {{ booking_url }}",
        "Your {{ equipment_model }} is ready for its first service",
        "Hi {{ first_name }},\n\n"
        "Your {{ equipment_model }} now shows {{ machine_hours }} hours. The first service (the break-in oil "
        "and filter change and a check of every adjustment) is the most important one of its life, and it "
        "keeps your warranty in good standing.\n\nBook it here: {{ booking_url }}",
    ),
    _event(
        "usage_service_alert",
        "A service-interval reminder every 100 machine hours.",
        {
            "equipment_model": "Kubota BX2380",
            "machine_hours": "310",
            "service_interval_hours": "100",
            "booking_url": "https://example.com/book",
        },
        "Hi {{ first_name }}, your {{ equipment_model }} is at {{ machine_hours }} hours and due for its "
        "{{ service_interval_hours }}-hour service. Book: {{ booking_url }}",
        "{{ equipment_model }}: {{ service_interval_hours }}-hour service due",
        "Hi {{ first_name }},\n\n"
        "Your {{ equipment_model }} has reached {{ machine_hours }} hours, so its "
        "{{ service_interval_hours }}-hour service is due. Regular servicing at each interval prevents "
        "costly breakdowns in the middle of the season.\n\nBook a service: {{ booking_url }}",
    ),
    _event(
        "sales_inquiry_response",
        "The auto-response to a contact-form enquiry about buying equipment.",
        {"inquiry_subject": "Zero-turn mowers"},
        "Hi {{ first_name }}, thanks for contacting {{ dealership_name }} about {{ inquiry_subject }}. "
        "A sales specialist will reply within one business day.",
        "Thanks for your enquiry: {{ inquiry_subject }}",
        "Hi {{ first_name }},\n\n"
        "Thank you for your interest in {{ inquiry_subject }}. One of our sales specialists will get back to "
        "you within one business day with availability, pricing and financing options.\n\n"
        "If it is urgent, call us on {{ dealership_phone }}.",
    ),
    _event(
        "service_inquiry_response",
        "The auto-response to a contact-form request for a repair or service.",
        {"inquiry_subject": "Mower will not start"},
        "Hi {{ first_name }}, {{ dealership_name }} service here: we got your request ({{ inquiry_subject }}) "
        "and will call you within one business day.",
        "We received your service request",
        "Hi {{ first_name }},\n\n"
        'Thank you for reaching out about "{{ inquiry_subject }}". Our service team will contact you within '
        "one business day to arrange a time.\n\n"
        "To help us, have your machine's model and serial number to hand (usually on a plate under the seat "
        "or on the engine).",
    ),
    _event(
        "appointment_reminder",
        "A reminder the day before a booked service or drop-off appointment.",
        {
            "appointment_date": "Thursday 16 April",
            "appointment_time": "9:30 AM",
            "equipment_model": "Honda HRX217",
        },
        "Reminder: your {{ equipment_model }} appointment at {{ dealership_name }} is {{ appointment_date }} at "
        "{{ appointment_time }}. Need to change it? {{ dealership_phone }}",
        "Your appointment on {{ appointment_date }} at {{ appointment_time }}",
        "Hi {{ first_name }},\n\n"
        "This is a reminder that we expect you and your {{ equipment_model }} on {{ appointment_date }} at "
        "{{ appointment_time }}.\n\n"
        "If that time no longer suits you, call us and we will find another.",
    ),
    _event(
        "purchase_receipt",
        "The receipt for an order or purchase (the PDF receipt goes as an attachment on email).",
        {"order_number": "SO-20931", "order_total": "$2,499.00", "purchase_date": "2026-03-02"},
        "Thanks for your purchase, {{ first_name }}! Order {{ order_number }} ({{ order_total }}) at "
        "{{ dealership_name }}. Your receipt is on its way by email.",
        "Your receipt for order {{ order_number }}",
        "Hi {{ first_name }},\n\n"
        "Thank you for your purchase on {{ purchase_date }}. Your receipt for order {{ order_number }} "
        "({{ order_total }}) is attached.\n\n"
        "Keep it with your machine's papers: you will need it for any warranty claim.",
    ),
    _event(
        "service_complete",
        "Serviced equipment is ready for pickup.",
        {"equipment_model": "Stihl MS 250", "work_order_number": "WO-10482", "amount_due": "$189.50"},
        "Hi {{ first_name }}, your {{ equipment_model }} is ready for pickup at {{ dealership_name }} "
        "(work order {{ work_order_number }}, {{ amount_due }}).",
        "Your {{ equipment_model }} is ready for pickup",
        "Hi {{ first_name }},\n\n"
        "Good news: the work on your {{ equipment_model }} is finished (work order {{ work_order_number }}). "
        "The amount due is {{ amount_due }}.\n\n"
        "You can pick it up during opening hours; our technician's notes will be with it.",
    ),
)

BY_NAME: dict[str, EventType] = {event.name: event for event in EVENT_TYPES}
