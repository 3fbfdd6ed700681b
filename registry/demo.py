"""A realistic demo: Filipino workers abroad, generated deterministically from a seed.

``generate_rows`` builds import rows (``registry.imports.rows.COLUMNS`` order,
strings, '' for empty) fast enough for benchmarks (200,000 rows in a few
seconds): every choice is a draw from small precomputed pools with one
``random.Random(seed)``, no Faker calls. ``registry.cli.demo`` (``registry
demo``) creates demo users and loads the rows through the real import path.

The data is made up. Host countries are weighted roughly like the stock of
overseas Filipino workers; cities and their coordinates are real; phone
prefixes are ones libphonenumber accepts as mobile (or fixed/mobile) numbers
of that very country, e.g. no +44 7457 (Isle of Man) or +81 800 (toll-free).
"""
from __future__ import annotations

import csv
import io
import math
import random
import unicodedata
from bisect import bisect
from datetime import date, timedelta
from functools import lru_cache
from itertools import accumulate

from registry.imports.rows import COLUMNS

# Contract dates are drawn relative to this day unless ``as_of`` is given, so
# the same seed gives the same rows on any day (the demo passes today).
DEFAULT_AS_OF = date(2026, 11, 1)

FAMILY_NAMES = (
    "Dela Cruz", "Santos", "Reyes", "Garcia", "Mendoza", "Bautista", "Ocampo", "Castillo", "Villanueva",
    "Aquino", "Ramos", "Gonzales", "Rivera", "Lopez", "Flores", "Torres", "Fernandez", "Cruz", "Tolentino",
    "Manalo", "Soriano", "Dizon", "Pascual", "Mercado", "Salazar", "Navarro", "Aguilar", "Valdez", "Domingo",
    "Sarmiento", "Gutierrez", "Santiago", "Panganiban", "Macaraeg", "Dimaculangan", "Mangubat", "Lacsamana",
    "Magbanua", "Malonzo", "Dumalagan", "Bacani", "Sison", "De Guzman", "De Leon", "Del Rosario",
    "De los Santos", "Buenaventura", "Lagman", "Maglaya", "Pagdanganan", "Briones", "Javier", "Marquez",
    "Francisco", "Alvarez", "Romero", "Morales", "Perez", "Hernandez", "Enriquez", "Mariano", "Padilla",
    "Esguerra", "Tan", "Lim", "Chua", "Yap", "Sy", "Go", "Ang", "Co", "Cabrera", "Evangelista", "Roxas",
    "Estrada", "Quiambao", "Macapagal", "Dimaano", "Cayabyab", "Lumanlan", "Galang", "Tuazon", "Manansala",
    "Pangilinan", "Dalisay", "Mabini", "Agbayani", "Ilagan", "Tumang", "Bernardo", "Corpuz", "Abad",
    "Belmonte", "Cabral", "Villareal", "Salvador", "Gatchalian", "Ilustre", "Tagle", "Umali", "Vergara",
    "Peña", "Ibáñez", "Muñoz", "Nuñez", "Castañeda", "Zúñiga", "Cañete", "Patiño", "Montaño", "Ordoñez",
    "Avendaño", "Magdaraog", "Saldaña", "Begoña", "Dueñas",
)
FEMALE_NAMES = (
    "Maria", "Maria Luisa", "Ma. Cristina", "Rosalie", "Jocelyn", "Marites", "Maricel", "Analyn", "Lorna",
    "Rowena", "Gemma", "Rhea", "Jasmine", "Kristine", "Mary Grace", "Joy", "Lovely", "Princess", "Angelica",
    "Cherry Mae", "Liezl", "Divina", "Evangeline", "Remedios", "Leonora", "Teresita", "Corazon", "Milagros",
    "Nenita", "Jennifer", "Michelle", "Mylene", "Shiela", "Arlene", "Marilou", "Ligaya", "Rosario", "Dolores",
    "Concepción", "Ana Marie", "Jonalyn", "Realyn", "Glaiza", "Rowelyn", "Mae", "Kimberly", "Aileen",
    "Charmaine", "Erlinda", "Josefina", "Lourdes", "Marivic", "Nora", "Pilar", "Rosemarie", "Zenaida",
    "Irene", "Hazel", "Janice", "Melanie", "Sheryl", "Anabelle", "Edna", "Girlie", "Joanna", "Ruby",
    "Belén", "Inés", "Marisol", "Florencia",
)
MALE_NAMES = (
    "Jose", "Juan Carlos", "Rodel", "Ramil", "Romeo", "Rogelio", "Danilo", "Ernesto", "Reynaldo",
    "Mark Anthony", "John Paul", "Jerome", "Jayson", "Christian", "Rommel", "Arnel", "Edgardo", "Efren",
    "Noel", "Ariel", "Dindo", "Joel", "Wilfredo", "Alfredo", "Renato", "Ronaldo", "Virgilio", "Nestor",
    "Melchor", "Jomar", "Kevin", "Rafael", "Jhun", "Bienvenido", "Ferdinand", "Rey", "Allan", "Dennis",
    "Jericho", "Nicanor", "Sixto", "Tomás", "Andrés", "Ramón", "Julián", "Emmanuel", "Gilbert", "Herminio",
    "Isagani", "Leonardo", "Marlon", "Orlando", "Ricardo", "Rolando", "Samuel", "Teodoro", "Vicente",
    "Jonathan", "Michael", "Raymond", "Roberto", "Eduardo", "Fernando", "Benjamin", "Carlo", "Domingo",
)
KIN_RELATIONS = (("spouse", 40), ("mother", 22), ("father", 8), ("sister", 12), ("brother", 8),
                 ("daughter", 5), ("son", 5))
AGENCIES = (
    "Bayanihan Manpower Services Inc.", "Pag-asa International Placement Agency", "Luzon Overseas Employment Corp.",
    "Mindanao Global Recruitment Inc.", "Visayas Star Manpower Agency", "Tanglaw Overseas Placement Inc.",
    "Kapatiran Human Resources Corp.", "Sampaguita International Manpower", "Bagong Araw Recruitment Agency",
    "Pacific Bridge Manpower Services", "Ilustrado Global Careers Inc.", "Harana Overseas Deployment Corp.",
)
LANGUAGES = (("fil;en", 55), ("fil;en;ceb", 12), ("fil;en;ilo", 8), ("fil;en;hil", 5), ("fil", 8), ("", 12))

# Occupations (ISCO-08) and the sector each is counted in.
SECTORS = {
    "9111": "Domestic work", "5152": "Domestic work", "5322": "Care work", "5321": "Healthcare",
    "2221": "Healthcare", "3221": "Healthcare", "5120": "Hospitality", "5131": "Hospitality",
    "9412": "Hospitality", "5141": "Personal services", "7112": "Construction", "7411": "Construction",
    "9313": "Construction", "7212": "Manufacturing", "8212": "Manufacturing", "9329": "Manufacturing",
    "8322": "Transport",
}
_GULF_JOBS = (("9111", 26), ("5152", 9), ("2221", 8), ("3221", 4), ("5120", 6), ("5131", 8), ("7112", 6),
              ("9313", 8), ("7411", 6), ("8322", 8), ("5141", 4), ("9412", 3), ("7212", 4))
_HOUSEHOLD_JOBS = (("9111", 62), ("5152", 14), ("5131", 6), ("5120", 5), ("2221", 3), ("5141", 4),
                   ("8322", 3), ("9412", 3))
_FACTORY_JOBS = (("8212", 34), ("9329", 20), ("5322", 18), ("7212", 10), ("9313", 6), ("5120", 4),
                 ("2221", 3), ("9111", 5))
_EUROPE_JOBS = (("5152", 34), ("9111", 24), ("5322", 20), ("5120", 6), ("5131", 6), ("2221", 6), ("8322", 4))
_NORTH_JOBS = (("2221", 38), ("3221", 14), ("5322", 20), ("5321", 8), ("5131", 5), ("5120", 5), ("8322", 4),
               ("9111", 6))

# Household employers per country (domestic and care workers).
_HOUSEHOLDS = {
    "SA": ("Al-Qahtani", "Al-Harbi", "Al-Otaibi", "Al-Ghamdi", "Al-Zahrani", "Al-Shehri", "Al-Dosari"),
    "AE": ("Al Mansoori", "Al Hashemi", "Al Suwaidi", "Al Falasi", "Al Ketbi", "Al Mazrouei"),
    "KW": ("Al-Mutairi", "Al-Ajmi", "Al-Enezi", "Al-Rashidi", "Al-Shammari"),
    "QA": ("Al-Kuwari", "Al-Marri", "Al-Naimi", "Al-Sulaiti", "Al-Mohannadi"),
    "HK": ("Chan", "Wong", "Leung", "Lau", "Cheung", "Ho", "Yip"),
    "SG": ("Tan", "Lim", "Lee", "Ng", "Goh", "Teo", "Koh"),
    "TW": ("Chen", "Lin", "Huang", "Chang", "Wu"),
    "JP": ("Sato", "Suzuki", "Takahashi", "Tanaka", "Watanabe"),
    "IT": ("Rossi", "Bianchi", "Romano", "Colombo", "Ricci", "Marino"),
    "GB": ("Smith", "Jones", "Taylor", "Brown", "Evans"),
    "US": ("Johnson", "Miller", "Davis", "Anderson", "Thompson"),
    "CA": ("Tremblay", "Martin", "Roy", "Wilson", "MacDonald"),
    "MY": ("Abdullah", "Ibrahim", "Rahman", "Wong", "Tan"),
    "KR": ("Kim", "Lee", "Park", "Choi", "Jung"),
}
# Employers by sector, per country: well-known employers of Filipino workers mixed with invented but
# plausible names. Illustrative only; undocumented demo workers get no employer.
_EMPLOYERS = {
    "SA": {"Healthcare": ("Riyadh Care Medical Group", "Al Noor Specialist Hospital",
                          "Eastern Province Health Cluster"),
           "Hospitality": ("Al Tazaj Restaurants Co.", "Red Sea Hospitality Group", "Najd Catering Services"),
           "Construction": ("Al Rashid Trading & Contracting", "Nesma & Partners Contracting", "Gulf Spic Contracting"),
           "Manufacturing": ("Jubail Steel Fabrication Co.", "Arabian Pipes Company"),
           "Transport": ("Al Khozama Transport Co.", "Saudi Ground Services"),
           "Personal services": ("Lamsa Beauty Salon",)},
    "AE": {"Healthcare": ("Emirates Healthcare Group", "Al Zahra Medical Centre", "NMC Royal Hospital"),
           "Hospitality": ("Emirates Hospitality LLC", "Jumeirah Beach Resorts", "Al Fanar Restaurant Group"),
           "Construction": ("Al Futtaim Group", "Arabtec Construction LLC", "Al Naboodah Contracting"),
           "Manufacturing": ("Emirates Aluminium Works", "Sharjah Metal Industries"),
           "Transport": ("Dubai Taxi Corporation", "Emirates Transport Services"),
           "Personal services": ("Tips & Toes Salon LLC", "Nail Spa Dubai LLC")},
    "KW": {"Healthcare": ("Dar Al Shifa Hospital", "Kuwait Medical Care Co."),
           "Hospitality": ("Alghanim Food Services", "Salmiya Hospitality Co."),
           "Construction": ("Kharafi National Contracting", "Combined Group Contracting"),
           "Manufacturing": ("Kuwait Metal Pipe Industries",), "Transport": ("City Group Transport Co.",),
           "Personal services": ("Salmiya Ladies Salon",)},
    "QA": {"Healthcare": ("Hamad Medical Services", "Al Ahli Care Hospital"),
           "Hospitality": ("Katara Hospitality Services", "Doha Marriott Catering"),
           "Construction": ("Urbacon Trading & Contracting", "Qatar Building Company", "Lusail Civil Works W.L.L."),
           "Manufacturing": ("Mesaieed Steel Works",), "Transport": ("Mowasalat Karwa Taxi",),
           "Personal services": ("Pearl Beauty Lounge",)},
    "HK": {"Hospitality": ("Maxim's Caterers Ltd", "Harbour City Restaurants Ltd"),
           "Healthcare": ("Kowloon Elderly Care Home",), "Transport": ("Citybus Services Ltd",),
           "Personal services": ("Causeway Bay Hair Studio",), "Construction": ("Gammon Building Works Ltd",),
           "Manufacturing": ("Kwai Chung Garments Ltd",)},
    "SG": {"Healthcare": ("Tan Tock Seng Care Services", "Parkway Nursing Pte Ltd"),
           "Hospitality": ("Jumbo Seafood Group", "Marina Bay Hospitality Pte Ltd"),
           "Construction": ("Woh Hup Builders Pte Ltd",), "Transport": ("ComfortDelGro Taxi",),
           "Personal services": ("Orchard Hair Salon Pte Ltd",), "Manufacturing": ("Jurong Precision Pte Ltd",)},
    "TW": {"Manufacturing": ("Hsinchu Semiconductor Packaging Co.", "Taoyuan Electronics Assembly Corp.",
                             "Formosa Plastics Group", "Taichung Precision Machinery Co."),
           "Care work": ("Taipei Home Care Association",), "Construction": ("Kaohsiung Shipyard Works",),
           "Hospitality": ("Din Tai Fung Kitchen",), "Healthcare": ("Chang Gung Care Centre",),
           "Domestic work": ("Taipei Home Care Association",)},
    "JP": {"Manufacturing": ("Hamamatsu Auto Parts Co., Ltd.", "Aichi Electronics Assembly K.K."),
           "Care work": ("Sakura Kaigo Care Services",), "Healthcare": ("Tokushukai Care Hospital",),
           "Hospitality": ("Osaka Bay Hotel & Dining",), "Construction": ("Kanto Scaffolding Co., Ltd.",),
           "Domestic work": ("Pasona Home Services",)},
    "IT": {"Care work": ("Cooperativa Sociale Assistenza Milano",), "Hospitality": ("Ristorante Da Giulio",),
           "Healthcare": ("Casa di Cura San Raffaele",), "Transport": ("Autoservizi Roma S.r.l.",),
           "Domestic work": ("Famiglia Colonna",)},
    "GB": {"Healthcare": ("NHS Foundation Trust (St Thomas')", "Manchester University NHS Trust",
                          "Bupa Care Homes"),
           "Care work": ("HC-One Care Homes", "Caremark Home Care"), "Hospitality": ("Whitbread Hotels",),
           "Transport": ("Arriva Bus Services",), "Domestic work": ("Kensington Household Staffing Ltd",)},
    "US": {"Healthcare": ("Kaiser Permanente", "NYC Health + Hospitals", "Queen's Medical Center",
                          "Houston Methodist"),
           "Care work": ("Golden Years Home Care LLC", "Sunrise Senior Living"),
           "Hospitality": ("MGM Resorts International", "Pacific Rim Hospitality LLC"),
           "Transport": ("Bay Area Shuttle Co.",), "Domestic work": ("Bay Area Household Staffing",)},
    "CA": {"Healthcare": ("Toronto Community Health Centre", "Vancouver Coastal Health"),
           "Care work": ("Maple Leaf Caregivers Inc.", "Prairie Home Support Services"),
           "Hospitality": ("Tim Hortons (franchise)", "Rocky Mountain Hotels Ltd"),
           "Transport": ("Winnipeg Transit Services",), "Domestic work": ("Maple Leaf Caregivers Inc.",)},
    "MY": {"Hospitality": ("Sabah Seafood Restaurants Sdn Bhd", "KL Hospitality Sdn Bhd"),
           "Construction": ("Kota Kinabalu Builders Sdn Bhd",), "Healthcare": ("Penang Adventist Care",),
           "Transport": ("Johor Logistics Sdn Bhd",), "Manufacturing": ("Penang Electronics Sdn Bhd",),
           "Personal services": ("KL Beauty Lounge",)},
    "KR": {"Manufacturing": ("Ansan Auto Parts Co., Ltd.", "Gimhae Metalworks Co.", "Incheon Textile Co."),
           "Care work": ("Seoul Silver Care Center",), "Construction": ("Busan Harbour Construction",),
           "Hospitality": ("Haeundae Seafood Restaurant",), "Healthcare": ("Seoul Silver Care Center",),
           "Domestic work": ("Seoul Silver Care Center",)},
}

# Host countries: (weight, jobs, streets, cities). City: (name, lat, lon, phone prefixes or None for the
# country's). Phone prefix: (country code + national prefix, random digits after it); every prefix was
# checked with libphonenumber (valid, a mobile or fixed/mobile number, and of this country).
HOST_COUNTRIES = {
    "SA": (22, _GULF_JOBS, ("King Fahd Rd", "Prince Sultan St", "Al Olaya St", "Tahlia St", "Al Madinah Rd"),
           (("Riyadh", 24.7136, 46.6753), ("Jeddah", 21.4858, 39.1925), ("Dammam", 26.4207, 50.0888),
            ("Al Khobar", 26.2172, 50.1971), ("Mecca", 21.3891, 39.8579), ("Jubail", 27.0046, 49.6460)),
           (("96650", 7), ("96653", 7), ("96654", 7), ("96655", 7), ("96656", 7), ("96658", 7), ("96659", 7))),
    "AE": (16, _GULF_JOBS, ("Sheikh Zayed Rd", "Al Wasl Rd", "Hamdan St", "Al Nahda St", "Al Rigga Rd"),
           (("Dubai", 25.2048, 55.2708), ("Abu Dhabi", 24.4539, 54.3773), ("Sharjah", 25.3463, 55.4209),
            ("Al Ain", 24.2075, 55.7447), ("Ajman", 25.4052, 55.5136)),
           (("97150", 7), ("97152", 7), ("97154", 7), ("97155", 7), ("97156", 7), ("97158", 7))),
    "KW": (7, _GULF_JOBS, ("Gulf Rd", "Salem Al Mubarak St", "Fahad Al Salem St", "Tunis St"),
           (("Kuwait City", 29.3759, 47.9774), ("Hawalli", 29.3328, 48.0286), ("Salmiya", 29.3339, 48.0761),
            ("Farwaniya", 29.2775, 47.9586), ("Jahra", 29.3375, 47.6581)),
           (("96550", 6), ("96555", 6), ("96566", 6), ("96590", 6), ("96594", 6), ("96597", 6), ("96599", 6))),
    "QA": (6, _GULF_JOBS, ("Al Sadd St", "C Ring Rd", "Salwa Rd", "Al Matar St"),
           (("Doha", 25.2854, 51.5310), ("Al Rayyan", 25.2919, 51.4244), ("Al Wakrah", 25.1659, 51.5976),
            ("Al Khor", 25.6804, 51.4969), ("Lusail", 25.4200, 51.4900)),
           (("97433", 6), ("97455", 6), ("97466", 6), ("97470", 6), ("97477", 6))),
    "HK": (7, _HOUSEHOLD_JOBS, ("Nathan Rd", "Hennessy Rd", "Des Voeux Rd", "Castle Peak Rd"),
           (("Central", 22.2819, 114.1585), ("Kowloon", 22.3193, 114.1694), ("Sha Tin", 22.3817, 114.1880),
            ("Tsuen Wan", 22.3710, 114.1140), ("Causeway Bay", 22.2803, 114.1830)),
           (("85261", 6), ("85263", 6), ("85264", 6), ("85265", 6), ("85269", 6), ("85294", 6), ("85296", 6),
            ("85297", 6))),
    "SG": (5, _HOUSEHOLD_JOBS, ("Orchard Rd", "Jurong West St 41", "Tampines Ave 4", "Woodlands Dr 14"),
           (("Singapore", 1.3521, 103.8198), ("Jurong West", 1.3404, 103.7090), ("Tampines", 1.3496, 103.9568),
            ("Woodlands", 1.4382, 103.7890)),
           (("6581", 6), ("6583", 6), ("6585", 6), ("6587", 6), ("6588", 6), ("6590", 6), ("6591", 6),
            ("6592", 6), ("6593", 6), ("6594", 6), ("6596", 6), ("6597", 6), ("6598", 6))),
    "TW": (5, _FACTORY_JOBS, ("Zhongshan Rd", "Minsheng Rd", "Zhongzheng Rd", "Fuxing Rd"),
           (("Taipei", 25.0330, 121.5654), ("New Taipei", 25.0120, 121.4657), ("Taoyuan", 24.9936, 121.3010),
            ("Taichung", 24.1477, 120.6736), ("Kaohsiung", 22.6273, 120.3014), ("Hsinchu", 24.8138, 120.9675)),
           (("88690", 7), ("88691", 7), ("88692", 7), ("88693", 7), ("88695", 7), ("88696", 7), ("88697", 7),
            ("88698", 7))),
    "JP": (4, _FACTORY_JOBS, ("Chuo-dori", "Meiji-dori", "Sakura-dori", "Midosuji"),
           (("Tokyo", 35.6762, 139.6503), ("Nagoya", 35.1815, 136.9066), ("Osaka", 34.6937, 135.5023),
            ("Yokohama", 35.4437, 139.6380), ("Hamamatsu", 34.7108, 137.7261)),
           tuple((f"8190{d}", 7) for d in "123456789") + tuple((f"8180{d}", 7) for d in "123456789")),
    "IT": (3, _EUROPE_JOBS, ("Via Roma", "Via Garibaldi", "Corso Vittorio Emanuele", "Via Mazzini"),
           (("Rome", 41.9028, 12.4964), ("Milan", 45.4642, 9.1900), ("Florence", 43.7696, 11.2558),
            ("Naples", 40.8518, 14.2681), ("Bologna", 44.4949, 11.3426)),
           tuple((f"39{p}", 7) for p in ("320", "328", "333", "338", "339", "340", "347", "348", "349", "351",
                                         "366", "380", "388", "392"))),
    "GB": (2, _NORTH_JOBS, ("High Street", "Station Road", "Church Lane", "Victoria Road"),
           (("London", 51.5072, -0.1276), ("Manchester", 53.4808, -2.2426), ("Birmingham", 52.4862, -1.8904),
            ("Leeds", 53.8008, -1.5491), ("Glasgow", 55.8642, -4.2518)),
           (("4471", 8), ("4473", 8)) + tuple((f"4474{d}", 7) for d in "01236789")),  # 7457x: Isle of Man
    "US": (8, _NORTH_JOBS, ("Main St", "Oak Ave", "Maple St", "Kalakaua Ave", "Mission St"),
           (("Los Angeles", 34.0522, -118.2437, ("213", "310", "818")),
            ("New York", 40.7128, -74.0060, ("212", "718", "917")),
            ("Honolulu", 21.3069, -157.8583, ("808",)), ("San Francisco", 37.7749, -122.4194, ("415", "510")),
            ("Las Vegas", 36.1699, -115.1398, ("702",)), ("Houston", 29.7604, -95.3698, ("713",)),
            ("Chicago", 41.8781, -87.6298, ("312", "773"))),
           None),
    "CA": (5, _NORTH_JOBS, ("Yonge St", "Granville St", "Portage Ave", "Jasper Ave"),
           (("Toronto", 43.6532, -79.3832, ("416", "647")), ("Vancouver", 49.2827, -123.1207, ("604", "778")),
            ("Calgary", 51.0447, -114.0719, ("403", "587")), ("Winnipeg", 49.8951, -97.1384, ("204",)),
            ("Edmonton", 53.5461, -113.4938, ("780", "587")), ("Montreal", 45.5019, -73.5674, ("514",))),
           None),
    "MY": (4, _HOUSEHOLD_JOBS, ("Jalan Ampang", "Jalan Tun Razak", "Jalan Gaya", "Jalan Penang"),
           (("Kuala Lumpur", 3.1390, 101.6869), ("Kota Kinabalu", 5.9804, 116.0735),
            ("Johor Bahru", 1.4927, 103.7414), ("George Town", 5.4141, 100.3288), ("Sandakan", 5.8402, 118.1179)),
           (("6012", 7), ("6016", 7), ("6019", 7))),
    "KR": (3, _FACTORY_JOBS, ("Sejong-daero", "Jungang-daero", "Gyeongin-ro", "Haeundae-ro"),
           (("Seoul", 37.5665, 126.9780), ("Busan", 35.1796, 129.0756), ("Incheon", 37.4563, 126.7052),
            ("Ansan", 37.3219, 126.8309), ("Gimhae", 35.2285, 128.8894)),
           tuple((f"8210{d}", 7) for d in "2346789")),
}
# Jitter of points around a city centre (Gaussian, km) and its cut-off; city-states get less.
JITTER_KM, JITTER_MAX_KM = 5.0, 15.0
SMALL_JITTER_KM, SMALL_JITTER_MAX_KM = 2.5, 8.0
SMALL_COUNTRIES = frozenset({"HK", "SG"})

CONTRACT_START_DAYS = 4 * 365  # contracts started up to four years before ``as_of``
LEGAL = (("documented", 86), ("undocumented", 7), ("unknown", 4), ("", 3))
# ~10% have one vulnerability: elderly (30% of those born before 1966), else one of these for 6.5%.
VULNERABILITY_SHARE = 0.065
VULNERABILITIES = (("chronic_illness", 45), ("pregnant", 35), ("disability", 20))
HOUSEHOLD_START = 0.056  # a unit is a household of 2-4 with this chance: ~15% of rows share one
PASSPORT_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def _picker(pairs):
    """A function of a uniform [0, 1) number returning a weighted choice (precomputed, bisect)."""
    values = [v for v, _ in pairs]
    cumulative = list(accumulate(w for _, w in pairs))
    total = cumulative[-1]
    bounds = [c / total for c in cumulative[:-1]]
    return lambda u: values[bisect(bounds, u)]


def _phone_formats(prefixes) -> tuple:
    """(printf format, number of random values) for each prefix: '+97150%07d', 10**7."""
    return tuple((f"+{prefix}%0{digits}d", 10 ** digits) for prefix, digits in prefixes)


# NANP exchanges (200-999 but not N11, and not the fictional 555).
_NANP_EXCHANGES = tuple(e for e in range(200, 1000) if e % 100 != 11 and e != 555)


def _nanp_formats(areas) -> tuple:
    return tuple((f"+1{area}%d%04d", None) for area in areas)


def _phone(rand, formats) -> str:
    fmt, scale = formats[int(rand() * len(formats))]
    if scale is None:  # US and Canada: exchange, then line number
        value = int(rand() * len(_NANP_EXCHANGES) * 10000)
        return fmt % (_NANP_EXCHANGES[value // 10000], value % 10000)
    return fmt % int(rand() * scale)


# The Philippines' mobile prefixes, for next of kin at home.
PH_MOBILE = _phone_formats(tuple((f"63{p}", 7) for p in (
    "917", "918", "919", "920", "921", "927", "928", "935", "936", "945", "955", "966", "977", "995", "998")))


class _Country:
    __slots__ = ("code", "job", "streets", "cities", "phones", "employers", "households", "jitter", "jitter_max")

    def __init__(self, code, spec):
        _, jobs, self.streets, cities, self.phones = spec
        self.code = code
        self.job = _picker(jobs)
        # (name, lat, lon, phone formats): US and Canadian cities have their own area codes.
        self.cities = [(c[0], c[1], c[2], _nanp_formats(c[3]) if len(c) > 3 else _phone_formats(self.phones))
                       for c in cities]
        self.employers = _EMPLOYERS[code]
        self.households = _HOUSEHOLDS[code]
        small = code in SMALL_COUNTRIES
        self.jitter = SMALL_JITTER_KM if small else JITTER_KM
        self.jitter_max = SMALL_JITTER_MAX_KM if small else JITTER_MAX_KM


_COUNTRIES = {code: _Country(code, spec) for code, spec in HOST_COUNTRIES.items()}
_pick_country = _picker([(code, spec[0]) for code, spec in HOST_COUNTRIES.items()])
_pick_legal = _picker(LEGAL)
_pick_vulnerability = _picker(VULNERABILITIES)
_pick_relation = _picker(KIN_RELATIONS)
_pick_languages = _picker(LANGUAGES)
_FAMILY_ASCII = {name: _ascii(name).lower().replace(" ", "") for name in FAMILY_NAMES}
_GIVEN_ASCII = {name: _ascii(name.split(" ")[0]).lower().replace(".", "") for name in FEMALE_NAMES + MALE_NAMES}
_MAIL_DOMAINS = ("gmail.com", "gmail.com", "gmail.com", "yahoo.com", "yahoo.com.ph", "outlook.com")
_BORN_FIRST, _BORN_DAYS = date(1960, 1, 1).toordinal(), (date(2005, 12, 31) - date(1960, 1, 1)).days + 1
_ELDERLY_BEFORE = date(1966, 1, 1).toordinal()


@lru_cache(maxsize=1)
def _birth_dates() -> tuple[str, ...]:
    return tuple(date.fromordinal(_BORN_FIRST + k).isoformat() for k in range(_BORN_DAYS))


def _contracts(as_of: date) -> list[tuple[str, str, str]]:
    """(start, end of a 2-year, end of a 3-year contract) for starts 0..CONTRACT_START_DAYS-1 days before."""
    out = []
    for k in range(CONTRACT_START_DAYS):
        start = as_of - timedelta(days=k)
        ends = []
        for years in (2, 3):
            try:
                end = start.replace(year=start.year + years)
            except ValueError:  # 29 February
                end = start.replace(year=start.year + years, day=28)
            ends.append((end - timedelta(days=1)).isoformat())
        out.append((start.isoformat(), *ends))
    return out


@lru_cache(maxsize=1)
def _land() -> dict:
    """The demo's host countries as prepared Shapely geometries (from geodata/), to keep homes on land."""
    import csv
    import gzip

    import shapely

    from registry.geocoding import GAZETTEER
    csv.field_size_limit(1 << 26)
    shapes = {}
    with gzip.open(GAZETTEER.with_name("country_boundaries.csv.gz"), "rt", encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["alpha2"] in HOST_COUNTRIES:
                shape = shapely.from_wkt(row["wkt"])
                shapely.prepare(shape)
                shapes[row["alpha2"]] = shape
    return shapes


def _point(rng: random.Random, country: _Country, lat: float, lon: float) -> tuple[float, float]:
    """A point near (lat, lon) on the host country's land: Gaussian offsets in km, redrawn beyond
    the cut-off or at sea (the registry refuses points outside the host country)."""
    import shapely
    land = _land().get(country.code)
    for _ in range(50):
        dx, dy = rng.gauss(0.0, country.jitter), rng.gauss(0.0, country.jitter)
        if dx * dx + dy * dy > country.jitter_max ** 2:
            continue
        point = lat + dy / 110.574, lon + dx / (111.320 * math.cos(math.radians(lat)))
        if land is None or shapely.contains_xy(land, point[1], point[0]):
            return point
    return lat, lon


def generate_rows(n: int, seed: int, *, as_of: date | None = None) -> list[list[str]]:
    """``n`` import rows (``COLUMNS`` order, strings), the same for the same seed.

    Passports are unique across the rows and depend only on ``n`` and ``seed``;
    contract dates are drawn relative to ``as_of`` (default ``DEFAULT_AS_OF``).
    """
    rng = random.Random(seed)
    rand, gauss = rng.random, rng.gauss
    as_of_ordinal = (as_of or DEFAULT_AS_OF).toordinal()
    # Passports first, so they do not depend on anything drawn later: P + 7 digits + a letter.
    passports = [f"P{k // 26:07d}{PASSPORT_LETTERS[k % 26]}" for k in rng.sample(range(260_000_000), n)]
    born_iso = _birth_dates()
    contracts = _contracts(as_of or DEFAULT_AS_OF)
    families, females, males = FAMILY_NAMES, FEMALE_NAMES, MALE_NAMES
    n_fam, n_f, n_m = len(families), len(females), len(males)
    # Locals: this loop runs once per row.
    phone, point, ph_mobile, countries = _phone, _point, PH_MOBILE, _COUNTRIES
    pick_country, pick_vulnerability, pick_relation = _pick_country, _pick_vulnerability, _pick_relation
    pick_legal, pick_languages, sectors, agencies = _pick_legal, _pick_languages, SECTORS, AGENCIES
    given_ascii, family_ascii, mail_domains = _GIVEN_ASCII, _FAMILY_ASCII, _MAIL_DOMAINS
    born_first, born_days, elderly_before = _BORN_FIRST, _BORN_DAYS, _ELDERLY_BEFORE
    pregnant_after = as_of_ordinal - 45 * 365

    rows: list[list[str]] = []
    household_no = 0
    while len(rows) < n:
        if rand() < HOUSEHOLD_START:
            size = 2 + int(rand() * 3)
            household_no += 1
            household = f"H{seed}-{household_no:05d}"
        else:
            size, household = 1, ""
        size = min(size, n - len(rows))
        if size == 1:
            household = ""
        country = countries[pick_country(rand())]
        city, city_lat, city_lon, phone_formats = country.cities[int(rand() * len(country.cities))]
        family = families[int(rand() * n_fam)]
        address = f"{1 + int(rand() * 250)} {country.streets[int(rand() * len(country.streets))]}" \
            if household or rand() < 0.3 else ""
        home = point(rng, country, city_lat, city_lon) if rand() < 0.8 else None
        for member in range(size):
            passport = passports[len(rows)]
            if member and rand() < 0.3:  # most households are one family; some are friends sharing a flat
                family = families[int(rand() * n_fam)]
            sex = "F" if rand() < 0.58 else "M"
            pool, count = (females, n_f) if sex == "F" else (males, n_m)
            given = first = pool[int(rand() * count)]
            if rand() < 0.25:
                second = pool[int(rand() * count)]
                if second != given and " " not in given and " " not in second:
                    given = f"{given} {second}"
            born_offset = int(rand() * born_days)
            born_ordinal = born_first + born_offset
            born = born_iso[born_offset]

            phones = phone(rand, phone_formats)
            if rand() < 0.2:
                phones += ";" + phone(rand, phone_formats)
            email = ""
            if rand() < 0.3:
                email = (f"{given_ascii[first]}.{family_ascii[family]}{int(rand() * 100)}"
                         f"@{mail_domains[int(rand() * len(mail_domains))]}")
            national_id = ""
            if rand() < 0.3:
                high, low = int(rand() * 10 ** 8), int(rand() * 10 ** 8)
                national_id = "%04d-%04d-%04d-%04d" % (high // 10000, high % 10000, low // 10000, low % 10000)

            vulnerability = ""
            if born_ordinal < elderly_before and rand() < 0.3:
                vulnerability = "elderly"
            elif rand() < VULNERABILITY_SHARE:
                vulnerability = pick_vulnerability(rand())
                if vulnerability == "pregnant" and (sex == "M" or born_ordinal < pregnant_after):
                    vulnerability = "chronic_illness"

            kin_name = kin_relation = kin_phone = ""
            if rand() < 0.75:
                kin_relation = pick_relation(rand())
                kin_sex_female = kin_relation in ("mother", "sister", "daughter") or (
                    kin_relation == "spouse" and sex == "M")
                kin_pool = females if kin_sex_female else males
                kin_family = family if rand() < 0.8 else families[int(rand() * n_fam)]
                kin_name = f"{kin_pool[int(rand() * len(kin_pool))]} {kin_family}"
                if rand() < 0.85:
                    kin_phone = phone(rand, ph_mobile)

            legal = pick_legal(rand())
            occupation = country.job(rand())
            sector = sectors[occupation]
            if sector in ("Domestic work", "Care work") and occupation in ("9111", "5152") or (
                    sector not in country.employers):
                employer = f"{country.households[int(rand() * len(country.households))]} family (private household)"
            else:
                choices = country.employers[sector]
                employer = choices[int(rand() * len(choices))]
            agency = agencies[int(rand() * len(agencies))] if rand() < 0.7 else ""
            start = end = ""
            if legal == "undocumented":
                employer = agency = ""
            if (legal != "undocumented" or rand() < 0.5) and rand() < 0.9:
                start, end2, end3 = contracts[int(rand() * CONTRACT_START_DAYS)]
                end = end2 if rand() < 0.8 else end3

            if home is None:
                lat = lon = ""
            else:
                if size > 1:  # a shared flat: the same building, a few metres apart
                    lat, lon = home[0] + gauss(0, 0.0002), home[1] + gauss(0, 0.0002)
                else:
                    lat, lon = home
                lat, lon = f"{lat:.5f}", f"{lon:.5f}"

            rows.append([
                family, given, "", sex, born, "PH", passport, national_id, phones, email,
                pick_languages(rand()), vulnerability, household, kin_name, kin_relation, kin_phone,
                country.code, city, address, employer, "", occupation, sector, start, end, legal, agency, lat, lon,
            ])
    return rows


def rows_to_csv(rows) -> bytes:
    """The rows as a UTF-8 CSV with the template's header."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


# What ``registry demo`` adds beside the nationals: users, a crisis over Dubai and assembly points.
DEMO_USERS = (("Demo desk", "desk", []), ("Demo embassy", "embassy", ["AE", "QA"]),
              ("Demo coordinator", "coordinator", []), ("Demo admin", "admin", []),
              ("Demo auditor", "auditor", []), ("Demo analyst", "analyst", []))

DEMO_CRISIS = {"name": "Demo: flash flood, Dubai", "kind": "flood", "severity": "high",
               "area": {"type": "circle", "center": {"lat": 25.2048, "lon": 55.2708}, "radius_km": 30},
               "zones_km": [25, 100]}


DEMO_POINTS = (  # name, kind, lat, lon, capacity, country
    ("Embassy of the Philippines, Abu Dhabi", "embassy", 24.4539, 54.3773, 400, "AE"),
    ("Philippine Consulate General, Dubai", "embassy", 25.2285, 55.2867, 150, "AE"),
    ("Dubai International Airport, Terminal 1", "airport", 25.2532, 55.3657, 300, "AE"),
    ("Al Barsha community hall", "shelter", 25.1124, 55.1980, 120, "AE"),
    ("Sharjah Filipino school", "school", 25.3463, 55.4209, 100, "AE"),
    ("Jebel Ali port, gate 5", "port", 25.0112, 55.0613, 80, "AE"),
    ("Embassy of the Philippines, Doha", "embassy", 25.3126, 51.4973, 300, "QA"),
)
