"""The public pages' forms (SPEC §10): their words in each language, their anti-forgery field, and the
parsing of what they send.

The pages have no session: the anti-forgery field is signed with the check-in key over what the form is for
(one link, by its token's index; one crisis's registration page) and when it was given out, so a form
forged elsewhere, or kept past ``FORM_TTL_S``, is refused without a cookie or JavaScript.
Field errors are message keys, shown in the page's language beside their field.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import date

from flask import current_app, request

from registry import validation
from registry.checkin.models import CHECKIN_STATUSES
from registry.nationals.models import SEXES

FORM_TTL_S = 12 * 3600
MAX_NOTE = 500
MAX_HOUSEHOLD = 50
MAX_ACCURACY_M = 1_000_000.0

# The national's languages (ISO 639-1 or -3, as stored) → the page's language.
LANGUAGES = {"en": "en", "eng": "en", "fil": "fil", "tl": "fil", "tgl": "fil", "ar": "ar", "ara": "ar"}
RIGHT_TO_LEFT = frozenset({"ar"})
NAMES = {"en": "English", "fil": "Filipino", "ar": "العربية"}

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Check in", "hello": "Hello, {name}.",
        "intro": "Tell the embassy how you are. First confirm your date of birth.",
        "date_of_birth": "Your date of birth", "date_hint": "Year-month-day, for example 1988-03-27",
        "status": "How are you?", "safe": "I am safe", "needs_assistance": "I need help",
        "needs_evacuation": "I need evacuation", "household_present": "Household members with you (not counting you)",
        "note": "Anything else the embassy should know (optional)",
        "location": "Your location (optional)", "share": "Share my phone's location",
        "locating": "Finding your location…", "located": "Location added (within {m} m).",
        "not_located": "Your location could not be read. You can still send the form.",
        "send": "Send", "thanks": "Thank you, {name}. The embassy has your answer.",
        "again": "You can use this link again if anything changes.",
        "hotline": "Hotline: {hotline}", "call": "Call the hotline if you need help now.",
        "err_required": "Required.", "err_date_format": "Write the date as year-month-day, e.g. 1988-03-27.",
        "err_date_range": "This date is not possible.", "err_wrong_birth": "This date of birth does not match. "
        "Tries left: {left}.", "err_status": "Choose one.", "err_number": "A whole number from 0 to 50.",
        "err_lat": "Latitude is from -90 to 90.", "err_lon": "Longitude is from -180 to 180.",
        "err_accuracy": "Not a valid accuracy.", "err_pair": "The location needs both latitude and longitude.",
        "err_too_long": "Too long.", "err_phone": "Write it with + and the country code, e.g. +971 50 123 4567.",
        "err_passport": "5 to 20 letters and digits.", "err_sex": "Choose one of the options.",
        "err_form": "This form has expired. Check the answers below and send it again.",
        "err_place": "Share your location or write where you are.", "err_sea": "This point is not on land.",
        "locked_title": "This link is locked",
        "locked": "The date of birth was wrong too many times. Call the hotline: an officer can send you a new "
                  "link.",
        "expired_title": "This link has expired",
        "expired": "This check-in is closed. If you still need help, call the hotline.",
        "not_found_title": "Page not found", "not_found": "This link is not known. Check that it is complete.",
        "busy_title": "Too many requests", "busy": "Too many requests from your network. Wait a minute and try "
                                                  "again.",
        "error_title": "Something went wrong", "error": "Try again in a moment.",
        "register_title": "Register with the embassy",
        "register_intro": "If you are not registered with the embassy, register here so that it can reach you. "
                          "An officer will check your registration.",
        "family_name": "Family name", "given_names": "Given names", "phone": "Phone number",
        "phone_hint": "With + and the country code", "passport_number": "Passport number (if you have one)",
        "national_id_number": "National ID number (if you have one)", "where": "Where are you? (city, area)",
        "sex": "Sex (optional)", "sex_none": "Prefer not to say", "sex_F": "Female", "sex_M": "Male",
        "sex_X": "Other", "register": "Register",
        "registered": "Thank you. Your registration was received; an officer of the embassy will check it and "
                      "may call you.",
        "errors_below": "Some answers need fixing: see below.",
    },
    "fil": {
        "title": "Mag-check in", "hello": "Kumusta, {name}.",
        "intro": "Ipaalam sa embahada ang iyong kalagayan. Kumpirmahin muna ang iyong petsa ng kapanganakan.",
        "date_of_birth": "Petsa ng iyong kapanganakan", "date_hint": "Taon-buwan-araw, halimbawa 1988-03-27",
        "status": "Kumusta ka?", "safe": "Ligtas ako", "needs_assistance": "Kailangan ko ng tulong",
        "needs_evacuation": "Kailangan kong ilikas",
        "household_present": "Mga kasambahay na kasama mo (hindi kasama ang sarili)",
        "note": "Iba pang dapat malaman ng embahada (opsyonal)",
        "location": "Ang iyong lokasyon (opsyonal)", "share": "Ibahagi ang lokasyon ng telepono",
        "locating": "Hinahanap ang iyong lokasyon…", "located": "Naidagdag ang lokasyon (sa loob ng {m} m).",
        "not_located": "Hindi mabasa ang iyong lokasyon. Maaari mo pa ring ipadala ang form.",
        "send": "Ipadala", "thanks": "Salamat, {name}. Natanggap ng embahada ang iyong sagot.",
        "again": "Maaari mong gamitin muli ang link na ito kung may magbago.",
        "hotline": "Hotline: {hotline}", "call": "Tumawag sa hotline kung kailangan mo ng tulong ngayon.",
        "err_required": "Kailangan.", "err_date_format": "Isulat ang petsa bilang taon-buwan-araw, hal. 1988-03-27.",
        "err_date_range": "Hindi posible ang petsang ito.",
        "err_wrong_birth": "Hindi tugma ang petsa ng kapanganakan. Natitirang subok: {left}.",
        "err_status": "Pumili ng isa.", "err_number": "Buong numero mula 0 hanggang 50.",
        "err_lat": "Ang latitude ay mula -90 hanggang 90.", "err_lon": "Ang longitude ay mula -180 hanggang 180.",
        "err_accuracy": "Hindi wastong katumpakan.", "err_pair": "Kailangan ang latitude at longitude.",
        "err_too_long": "Masyadong mahaba.",
        "err_phone": "Isulat na may + at country code, hal. +971 50 123 4567.",
        "err_passport": "5 hanggang 20 titik at numero.", "err_sex": "Pumili sa mga opsyon.",
        "err_form": "Nag-expire ang form. Suriin ang mga sagot at ipadala muli.",
        "err_place": "Ibahagi ang lokasyon o isulat kung nasaan ka.", "err_sea": "Wala sa lupa ang puntong ito.",
        "locked_title": "Naka-lock ang link na ito",
        "locked": "Ilang beses na mali ang petsa ng kapanganakan. Tumawag sa hotline: makapagpapadala ang isang "
                  "opisyal ng bagong link.",
        "expired_title": "Nag-expire na ang link na ito",
        "expired": "Sarado na ang check-in na ito. Kung kailangan mo pa ng tulong, tumawag sa hotline.",
        "not_found_title": "Walang ganitong pahina", "not_found": "Hindi kilala ang link na ito. Tiyaking buo ito.",
        "busy_title": "Masyadong maraming kahilingan",
        "busy": "Masyadong maraming kahilingan mula sa iyong network. Maghintay ng isang minuto at subukang muli.",
        "error_title": "May nangyaring mali", "error": "Subukang muli mamaya.",
        "register_title": "Magparehistro sa embahada",
        "register_intro": "Kung hindi ka pa nakarehistro sa embahada, magparehistro dito para maabot ka nito. "
                          "Susuriin ng isang opisyal ang iyong rehistro.",
        "family_name": "Apelyido", "given_names": "Pangalan", "phone": "Numero ng telepono",
        "phone_hint": "May + at country code", "passport_number": "Numero ng pasaporte (kung mayroon)",
        "national_id_number": "Numero ng national ID (kung mayroon)", "where": "Nasaan ka? (lungsod, lugar)",
        "sex": "Kasarian (opsyonal)", "sex_none": "Ayaw sabihin", "sex_F": "Babae", "sex_M": "Lalaki",
        "sex_X": "Iba pa", "register": "Magparehistro",
        "registered": "Salamat. Natanggap ang iyong rehistro; susuriin ito ng isang opisyal ng embahada at maaaring "
                      "tawagan ka.",
        "errors_below": "May mga sagot na kailangang ayusin: tingnan sa ibaba.",
    },
    "ar": {
        "title": "تسجيل الحضور", "hello": "مرحبًا {name}.",
        "intro": "أخبر السفارة عن حالك. أكّد أولًا تاريخ ميلادك.",
        "date_of_birth": "تاريخ ميلادك", "date_hint": "السنة-الشهر-اليوم، مثل 1988-03-27",
        "status": "كيف حالك؟", "safe": "أنا بأمان", "needs_assistance": "أحتاج إلى مساعدة",
        "needs_evacuation": "أحتاج إلى إجلاء", "household_present": "أفراد الأسرة معك (من دونك)",
        "note": "أي شيء آخر يجب أن تعرفه السفارة (اختياري)",
        "location": "موقعك (اختياري)", "share": "مشاركة موقع هاتفي",
        "locating": "جارٍ تحديد موقعك…", "located": "أضيف الموقع (بدقة {m} م).",
        "not_located": "تعذّرت قراءة موقعك. يمكنك إرسال النموذج مع ذلك.",
        "send": "إرسال", "thanks": "شكرًا {name}. وصلت إجابتك إلى السفارة.",
        "again": "يمكنك استخدام هذا الرابط مجددًا إذا تغيّر شيء.",
        "hotline": "الخط الساخن: {hotline}", "call": "اتصل بالخط الساخن إذا احتجت إلى مساعدة الآن.",
        "err_required": "مطلوب.", "err_date_format": "اكتب التاريخ بالشكل سنة-شهر-يوم، مثل 1988-03-27.",
        "err_date_range": "هذا التاريخ غير ممكن.",
        "err_wrong_birth": "تاريخ الميلاد غير مطابق. المحاولات الباقية: {left}.",
        "err_status": "اختر واحدًا.", "err_number": "عدد صحيح من 0 إلى 50.",
        "err_lat": "خط العرض من -90 إلى 90.", "err_lon": "خط الطول من -180 إلى 180.",
        "err_accuracy": "دقة غير صالحة.", "err_pair": "يحتاج الموقع إلى خط العرض وخط الطول.",
        "err_too_long": "طويل جدًا.", "err_phone": "اكتبه مع + ورمز البلد، مثل +971 50 123 4567.",
        "err_passport": "من 5 إلى 20 حرفًا ورقمًا.", "err_sex": "اختر أحد الخيارات.",
        "err_form": "انتهت صلاحية النموذج. راجع الإجابات وأرسله مجددًا.",
        "err_place": "شارك موقعك أو اكتب أين أنت.", "err_sea": "هذه النقطة ليست على اليابسة.",
        "locked_title": "هذا الرابط مقفل",
        "locked": "أُدخل تاريخ الميلاد خطأً مرات كثيرة. اتصل بالخط الساخن: يمكن لموظف أن يرسل لك رابطًا جديدًا.",
        "expired_title": "انتهت صلاحية هذا الرابط",
        "expired": "أُغلق تسجيل الحضور هذا. إذا كنت ما زلت تحتاج إلى مساعدة فاتصل بالخط الساخن.",
        "not_found_title": "الصفحة غير موجودة", "not_found": "هذا الرابط غير معروف. تأكد من أنه كامل.",
        "busy_title": "طلبات كثيرة جدًا", "busy": "طلبات كثيرة جدًا من شبكتك. انتظر دقيقة ثم حاول مجددًا.",
        "error_title": "حدث خطأ", "error": "حاول مجددًا بعد قليل.",
        "register_title": "التسجيل لدى السفارة",
        "register_intro": "إذا لم تكن مسجلًا لدى السفارة فسجّل هنا لتتمكن من الوصول إليك. سيتحقق موظف من تسجيلك.",
        "family_name": "اسم العائلة", "given_names": "الاسم الأول", "phone": "رقم الهاتف",
        "phone_hint": "مع + ورمز البلد", "passport_number": "رقم جواز السفر (إن وجد)",
        "national_id_number": "رقم الهوية الوطنية (إن وجد)", "where": "أين أنت؟ (المدينة، المنطقة)",
        "sex": "الجنس (اختياري)", "sex_none": "أفضّل عدم القول", "sex_F": "أنثى", "sex_M": "ذكر", "sex_X": "آخر",
        "register": "تسجيل",
        "registered": "شكرًا. وصل تسجيلك؛ سيتحقق منه موظف في السفارة وقد يتصل بك.",
        "errors_below": "بعض الإجابات تحتاج إلى تصحيح: انظر أدناه.",
    },
}


def language_for(languages=()) -> str:
    """The page's language: ``?lang=`` when the person chose one, else the first of ``languages`` (the
    national's) the pages speak, else the browser's preference, else English."""
    chosen = request.args.get("lang")
    if chosen in TEXTS:
        return chosen
    for code in languages or ():
        if LANGUAGES.get(str(code).lower()):
            return LANGUAGES[str(code).lower()]
    best = request.accept_languages.best_match(["en", "fil", "tl", "ar"])
    return LANGUAGES.get(best or "en", "en")


def words(lang: str) -> dict[str, str]:
    return TEXTS[lang]


def direction(lang: str) -> str:
    return "rtl" if lang in RIGHT_TO_LEFT else "ltr"


# ---------------------------------------------------------------------- the anti-forgery field

def _mac(purpose: str, issued: int) -> str:
    key = current_app.config["REGISTRY_CHECKIN_KEY"]
    mac = hmac.new(key, f"checkin-form:{purpose}:{issued}".encode(), hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def form_token(purpose: str) -> str:
    """The hidden field of a form for ``purpose`` (a link's token index in hex, or ``register:<crisis>``)."""
    issued = int(time.time())
    return f"{issued}.{_mac(purpose, issued)}"


def form_token_valid(sent: str | None, purpose: str) -> bool:
    issued, _, mac = (sent or "").partition(".")
    if not issued.isdigit() or not mac:
        return False
    age = time.time() - int(issued)
    return 0 <= age + 60 and age <= FORM_TTL_S and hmac.compare_digest(mac, _mac(purpose, int(issued)))


def same_origin() -> bool:
    """A form post that does not say it comes from another site. Browsers send ``Origin: null`` from a page
    with ``Referrer-Policy: no-referrer`` (these pages), so only a named foreign origin is refused: the
    signed field is what binds the form to the page."""
    origin = request.headers.get("Origin")
    if not origin or origin == "null":
        return True
    allowed = {request.host_url.rstrip("/"), current_app.config["REGISTRY_PUBLIC_URL"].rstrip("/")}
    return origin.rstrip("/") in allowed


# ---------------------------------------------------------------------- parsing

def _date(value: str, errors: dict, field: str = "date_of_birth") -> date | None:
    value = (value or "").strip()
    if not value:
        errors[field] = "err_required"
        return None
    try:
        parsed = date.fromisoformat(value)
    except ValueError:
        errors[field] = "err_date_format"
        return None
    if len(value) != 10:
        errors[field] = "err_date_format"
        return None
    try:
        return validation.parse_birth_date(parsed)
    except ValueError:
        errors[field] = "err_date_range"
        return None


def _text(form, field: str, errors: dict, max_length: int, *, required: bool = False) -> str | None:
    try:
        value = validation.parse_text(form.get(field) or "", max_length, required=required)
    except ValueError:
        errors[field] = "err_required" if required and not (form.get(field) or "").strip() else "err_too_long"
        return None
    if required and not value:
        errors[field] = "err_required"
    return value


def _location(form, errors: dict) -> dict:
    """``lat``, ``lon``, ``accuracy_m`` (the phone's, filled by the page's script): all or none."""
    raw = {field: (form.get(field) or "").strip() for field in ("lat", "lon", "accuracy_m")}
    if not raw["lat"] and not raw["lon"]:
        return {}
    if not raw["lat"] or not raw["lon"]:
        errors["lat" if not raw["lat"] else "lon"] = "err_pair"
        return {}
    found = {}
    for field, parse, message in (("lat", validation.parse_latitude, "err_lat"),
                                  ("lon", validation.parse_longitude, "err_lon")):
        try:
            found[field] = parse(float(raw[field]))
        except ValueError:
            errors[field] = message
    if raw["accuracy_m"]:
        try:
            accuracy = float(raw["accuracy_m"])
            if not 0 <= accuracy <= MAX_ACCURACY_M:
                raise ValueError
            found["accuracy_m"] = accuracy
        except ValueError:
            errors["accuracy_m"] = "err_accuracy"
    return found if not errors.keys() & {"lat", "lon", "accuracy_m"} else {}


def parse_checkin(form) -> tuple[date | None, dict, dict]:
    """(the date of birth given, the answer, field errors as message keys)."""
    errors: dict[str, str] = {}
    born = _date(form.get("date_of_birth"), errors)
    answer: dict = {}
    status = form.get("status")
    if status not in CHECKIN_STATUSES:
        errors["status"] = "err_status"
    answer["status"] = status
    household = (form.get("household_present") or "").strip()
    if household:
        if household.isdigit() and int(household) <= MAX_HOUSEHOLD:
            answer["household_present"] = int(household)
        else:
            errors["household_present"] = "err_number"
    answer["note"] = _text(form, "note", errors, MAX_NOTE)
    answer.update(_location(form, errors))
    return born, answer, errors


def parse_registration(form) -> tuple[dict, dict]:
    """(the registration, field errors as message keys)."""
    errors: dict[str, str] = {}
    data: dict = {"family_name": _text(form, "family_name", errors, validation.MAX_NAME, required=True),
                  "given_names": _text(form, "given_names", errors, validation.MAX_NAME, required=True),
                  "date_of_birth": _date(form.get("date_of_birth"), errors),
                  "where": _text(form, "where", errors, 200)}
    phone = (form.get("phone") or "").strip()
    if not phone:
        errors["phone"] = "err_required"
    else:
        try:
            data["phone"] = validation.parse_phone("+" + phone[2:] if phone.startswith("00") else phone)
        except ValueError:
            errors["phone"] = "err_phone"
    for field, parse, message in (("passport_number", validation.parse_passport, "err_passport"),
                                  ("national_id_number", lambda v: validation.parse_text(v, 40), "err_too_long")):
        value = (form.get(field) or "").strip()
        if value:
            try:
                data[field] = parse(value)
            except ValueError:
                errors[field] = message
    sex = form.get("sex") or None
    if sex is not None and sex not in SEXES:
        errors["sex"] = "err_sex"
    data["sex"] = sex
    data.update(_location(form, errors))
    if not data.get("where") and "lat" not in data and not errors.keys() & {"lat", "lon", "where"}:
        errors["where"] = "err_place"
    return data, errors
