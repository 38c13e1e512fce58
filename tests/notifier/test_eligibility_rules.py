"""Each eligibility rule: a call restricted to another territory, to applicants or sectors the
member is not, to other ATECO codes, or about another sector, does not match; explain names the rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from notifier.config import MatchingConfig
from notifier.matching.engine import Matcher, explain
from notifier.matching.evaluation import load_relevance_set
from notifier.matching.profiles import Profile
from notifier.matching.topics import topic_ids
from storage.calls import CallView
from tests.fakes.matching_data import NOW, call, profile

ALL_REGIONS = (
    "Abruzzo", "Basilicata", "Calabria", "Campania", "Emilia-Romagna", "Friuli-Venezia Giulia", "Lazio",
    "Liguria", "Lombardia", "Marche", "Molise", "Piemonte", "Puglia", "Sardegna", "Sicilia", "Toscana",
    "Trentino-Alto Adige/Südtirol", "Umbria", "Valle d'Aosta/Vallée d'Aoste", "Veneto",
)  # fmt: skip

SET = Path(__file__).resolve().parents[1] / "data" / "relevance"
PACKAGING_BG = profile(topics=["packaging"], province="BG", beneficiaries=["pmi"], ateco=["22.22"])
PACKAGING_NO_PROVINCE = profile(topics=["packaging"], beneficiaries=["pmi"])
UNIVERSITY = profile(topics=["packaging"], beneficiaries=["ricerca"], province="MI")


def verdict(c: CallView, p: Profile) -> str | None:
    """The rule that excludes ``p`` from ``c`` (None when it matches), checking the fast path agrees."""
    ex = explain(c, p, now=NOW)
    assert bool(Matcher([(1, p)]).match(c, now=NOW)) == ex.matched
    assert ex.score >= 3, "the call must be on topic: the test is about the rule"
    return ex.excluded_by


# --- territory ---------------------------------------------------------------------------------


def test_the_source_regions_field() -> None:
    assert verdict(call("Imballaggi sostenibili", regions=("Piemonte",)), PACKAGING_BG) == "territory"
    assert verdict(call("Imballaggi sostenibili", regions=("Lombardia",)), PACKAGING_BG) is None
    assert verdict(call("Imballaggi sostenibili", regions=ALL_REGIONS), PACKAGING_BG) is None  # national


@pytest.mark.parametrize(
    "text",
    [
        "Contributi alle PMI con sede operativa in Veneto",
        "Regione Piemonte – contributi alle imprese",
        "Contributi alle PMI piemontesi",
        "Possono partecipare le imprese che abbiano una sede operativa, presso cui svolgere il progetto, in Toscana",
    ],
)
def test_another_region_in_the_text(text: str) -> None:
    c = call("Bando imballaggi sostenibili", summary=text)
    assert verdict(c, PACKAGING_BG) == "territory"
    assert "regione" in explain(c, PACKAGING_BG, now=NOW).detail("it")


def test_a_mention_of_a_region_is_not_a_restriction() -> None:
    c = call("Imballaggi sostenibili", summary="Il progetto pilota in Veneto ha mostrato buoni risultati.")
    assert verdict(c, PACKAGING_BG) is None


@pytest.mark.parametrize(
    ("text", "body"),
    [
        ("Contributi alle imprese con sede in provincia di Brescia", ""),
        ("Bando camerale", "Camera di Commercio di Brescia"),
        ("Contributi alle imprese iscritte alla CCIAA di Brescia", ""),
        ("Riservato alle imprese bresciane", ""),
        ("Imprese con sede nelle province di Cremona, Mantova e Pavia", ""),
        ("Bando camerale", "Camera di Commercio di Cremona-Mantova-Pavia"),
        ("Bando camerale", "Camera di Commercio Metropolitana di Milano-Monza-Brianza-Lodi"),
    ],
)
def test_another_province_or_chamber_area(text: str, body: str) -> None:
    c = call("Voucher imballaggi sostenibili", summary=text, granting_body=body, regions=("Lombardia",))
    assert verdict(c, PACKAGING_BG) == "territory"


def test_the_members_own_province_or_chamber_passes() -> None:
    own = call(
        "Voucher imballaggi",
        summary="Imprese con sede in provincia di Bergamo",
        granting_body="Camera di Commercio di Bergamo",
    )
    listed = call(
        "Voucher imballaggi", summary="Imprese con sede nelle province di Bergamo, Brescia e Cremona"
    )
    assert verdict(own, PACKAGING_BG) is None
    assert verdict(listed, PACKAGING_BG) is None


def test_no_province_in_the_profile_gets_the_benefit_of_the_doubt_inside_its_region() -> None:
    brescia = call("Voucher imballaggi", summary="Imprese con sede in provincia di Brescia")
    verona = call("Voucher imballaggi", summary="Imprese con sede in provincia di Verona")
    assert verdict(brescia, PACKAGING_NO_PROVINCE) is None
    assert verdict(verona, PACKAGING_NO_PROVINCE) == "territory"


def test_ambiguous_place_names_need_a_clear_trigger() -> None:
    # "Fermo" is also "still"; only "provincia di Fermo" names the province.
    plain = call("Imballaggi", summary="Sede operativa in Lombardia, fermo restando il regolamento")
    assert verdict(plain, PACKAGING_BG) is None
    assert (
        verdict(call("Imballaggi", summary="Imprese della provincia di Fermo"), PACKAGING_BG) == "territory"
    )


def test_bandi_e_servizi_calls_are_lombard_and_the_cluster_region_is_configurable() -> None:
    c = call("Bando imballaggi", source="lombardia")
    assert verdict(c, PACKAGING_NO_PROVINCE) is None
    piedmont = explain(c, PACKAGING_NO_PROVINCE, now=NOW, config=MatchingConfig(region="Piemonte"))
    assert piedmont.excluded_by == "territory"
    assert explain(c, profile(topics=["packaging"], region="Veneto"), now=NOW).excluded_by == "territory"


# --- beneficiary type ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("summary", "beneficiaries"),
    [
        ("Contributi ai Comuni lombardi per gli imballaggi", ()),
        ("Contributi per gli imballaggi", ("Enti locali",)),
        ("Contributi per gli imballaggi", ("Università", "Organismi di ricerca")),
        ("Contributi agli enti del Terzo settore per gli imballaggi", ()),
        ("Contributi alle persone fisiche per gli imballaggi", ()),
        ("Riservato alle grandi imprese", ()),
        ("Riservato alle startup innovative", ()),
    ],
)
def test_applicant_types_the_member_is_not(summary: str, beneficiaries: tuple[str, ...]) -> None:
    c = call("Bando imballaggi", summary=summary, beneficiaries=beneficiaries)
    assert verdict(c, PACKAGING_BG) == "beneficiary"


def test_a_call_naming_no_type_admits_everyone_and_pmi_admits_micro_and_startups() -> None:
    assert verdict(call("Bando imballaggi"), PACKAGING_BG) is None
    pmi = call("Bando imballaggi", summary="Contributi alle PMI")
    assert verdict(pmi, profile(topics=["packaging"], beneficiaries=["micro"])) is None
    assert verdict(pmi, profile(topics=["packaging"], beneficiaries=["startup"])) is None
    assert verdict(pmi, UNIVERSITY) == "beneficiary"


def test_research_bodies_as_partners_admit_the_university() -> None:
    c = call("Bando imballaggi", summary="Partenariati di PMI con la partecipazione di organismi di ricerca")
    assert verdict(c, UNIVERSITY) is None and verdict(c, PACKAGING_BG) is None


def test_denied_and_subordinate_applicants_are_not_admitted() -> None:
    no_firms = call(
        "Bando imballaggi",
        description="Chi può partecipare\nUniversità e organismi di ricerca. Non sono ammesse imprese.",
    )
    suppliers = call(
        "Bando imballaggi",
        description="Chi può partecipare\nGrandi imprese. Le PMI possono partecipare solo come fornitrici.",
    )
    eu = call(
        "Packaging call", description="Eligible applicants are cluster organisations. SMEs are not eligible."
    )
    assert verdict(no_firms, PACKAGING_BG) == "beneficiary"
    assert verdict(suppliers, PACKAGING_BG) == "beneficiary"
    assert verdict(eu, PACKAGING_BG) == "beneficiary"


def test_a_coarse_source_tag_does_not_widen_a_specific_call() -> None:
    # incentivi.gov.it tags a start-up measure "Impresa" as well.
    c = call(
        "Bando imballaggi", beneficiaries=("Impresa", "Startup innovative iscritte da non più di 60 mesi")
    )
    assert verdict(c, PACKAGING_BG) == "beneficiary"
    every_size = call(
        "Bando imballaggi", summary="Micro, piccole, medie e grandi imprese con sede in Lombardia"
    )
    assert verdict(every_size, PACKAGING_BG) is None


def test_without_declared_types_a_member_is_a_company() -> None:
    assert (
        verdict(call("Bando imballaggi", summary="Contributi alle PMI"), profile(topics=["packaging"]))
        is None
    )
    comuni = call("Bando imballaggi", summary="Contributi ai Comuni lombardi")
    assert verdict(comuni, profile(topics=["packaging"])) == "beneficiary"


# --- applicant sector and ATECO ---------------------------------------------------------------


@pytest.mark.parametrize(
    "who",
    [
        "Possono partecipare le imprese agricole e gli imprenditori agricoli professionali",
        "A chi si rivolge Lo strumento è rivolto alle imprese di trasformazione e commercializzazione di prodotti agricoli",
        "Chi può partecipare Strutture ricettive alberghiere ed extra-alberghiere",
        "A chi si rivolge PMI del settore turistico",
        "Chi può partecipare Esercizi di vicinato e imprese del commercio al dettaglio",
    ],
)
def test_calls_reserved_to_another_sector(who: str) -> None:
    c = call("Bando imballaggi sostenibili", description=who)
    assert verdict(c, PACKAGING_BG) == "applicant-sector"


@pytest.mark.parametrize(
    "who",
    [
        "Riservato alle imprese del settore turistico-ricettivo",
        "Possono presentare domanda esclusivamente le imprese turistiche",
        "Possono partecipare solo le imprese turistiche",
        "Il bando è destinato unicamente alle imprese turistico-ricettive",
        "Le domande possono essere presentate dalle strutture turistico-ricettive",
        "Only tourism operators may apply",
        "Open exclusively to hospitality businesses",
        "The call is reserved for SMEs in the hospitality sector",
    ],
)
@pytest.mark.parametrize("where", ["summary", "description"])
def test_tourism_only_in_plain_text(who: str, where: str) -> None:
    # Plain sentences, no "who can apply" heading: the cue may come before or after the applicant.
    c = call("Bando imballaggi sostenibili", **{where: who})
    assert verdict(c, PACKAGING_BG) == "applicant-sector"
    assert "turistic" in explain(c, PACKAGING_BG, now=NOW).detail("it")


@pytest.mark.parametrize(
    "text",
    [
        "Possono presentare domanda le imprese di tutti i settori, escluse le imprese turistiche",
        "Possono presentare domanda esclusivamente le PMI con sede in Lombardia",
        "Le imprese possono presentare domanda dal 1 ottobre",
    ],
)
def test_exclusively_is_not_a_denial_and_an_excluded_sector_does_not_reserve(text: str) -> None:
    assert verdict(call("Bando imballaggi sostenibili", summary=text), PACKAGING_BG) is None


def test_esclusivamente_restricts_to_the_applicant_it_names() -> None:
    c = call("Bando imballaggi", summary="Possono presentare domanda esclusivamente gli enti locali")
    assert verdict(c, PACKAGING_BG) == "beneficiary"


def test_a_call_open_to_firms_in_general_is_not_reserved() -> None:
    c = call(
        "Bando imballaggi", description="Chi può partecipare PMI e imprese agricole con sede in Lombardia"
    )
    assert verdict(c, PACKAGING_BG) is None


def test_the_ateco_list_of_a_call() -> None:
    tourism = call("Bando imballaggi", ateco_codes=("55.10", "56.10", "79.11"))
    # Reserved by its codes alone: the member is not in the sector, whether or not it gave codes.
    assert verdict(tourism, PACKAGING_BG) == "applicant-sector"
    assert verdict(tourism, PACKAGING_NO_PROVINCE) == "applicant-sector"
    assert verdict(tourism, profile(topics=["packaging"], ateco=["55.10"])) is None
    manufacturing = call("Bando imballaggi", ateco_codes=("20", "22", "25"))
    assert verdict(manufacturing, PACKAGING_BG) is None
    assert verdict(manufacturing, profile(topics=["packaging"], ateco=["71.20"])) == "ateco"
    assert verdict(manufacturing, PACKAGING_NO_PROVINCE) is None  # no codes in the profile: not decided
    assert verdict(call("Bando imballaggi", ateco_codes=("Tutti i settori economici",)), PACKAGING_BG) is None


# --- other sector ---------------------------------------------------------------------------


def test_cross_cutting_themes_do_not_match_calls_about_other_sectors() -> None:
    research = profile(topics=["ricerca-innovazione", "digitale"])
    soil = call(
        "Research and innovation for soil health living labs",
        keywords=("Soil biodiversity", "Agriculture"),
        summary="Industrial research and experimental development on soil management.",
    )
    ex = explain(soil, research, now=NOW)
    assert ex.excluded_by == "other-sector" and "agricoltura" in ex.detail("it")
    cosmetic = call(
        "Research and innovation for soil-derived cosmetic ingredients",
        keywords=("Soil biodiversity", "Cosmetics"),
        summary="Industrial research and experimental development on soil management.",
    )
    assert explain(cosmetic, research, now=NOW).matched  # names the cosmetics chain


def test_chain_topics_still_match_products_in_other_sectors() -> None:
    food_packaging = call(
        "Sustainable food packaging for the agri-food sector", keywords=("Food", "Packaging")
    )
    assert verdict(food_packaging, PACKAGING_NO_PROVINCE) is None


def test_a_negated_sector_cue_does_not_count() -> None:
    c = call(
        "Bando ricerca e sviluppo", summary="Per le PMI di tutti i settori, esclusi agricoltura e pesca."
    )
    assert verdict(c, profile(topics=["ricerca-innovazione"])) is None


def test_the_territory_detail_agrees_with_the_number_of_places() -> None:
    one = explain(
        call("Imballaggi", summary="Imprese con sede in provincia di Brescia"), PACKAGING_BG, now=NOW
    )
    many = explain(
        call("Imballaggi", summary="Imprese con sede nelle province di Cremona, Mantova e Pavia"),
        PACKAGING_BG,
        now=NOW,
    )
    region = explain(call("Imballaggi", regions=("Piemonte",)), PACKAGING_BG, now=NOW)
    regions = explain(call("Imballaggi", regions=("Piemonte", "Veneto")), PACKAGING_BG, now=NOW)
    assert one.detail("it").startswith("riservato alla provincia di Brescia")
    assert many.detail("it").startswith("riservato alle province di Cremona, Mantova, Pavia")
    assert region.detail("it").startswith("riservato alla regione Piemonte")
    assert regions.detail("it").startswith("riservato alle regioni Piemonte, Veneto")
    assert many.detail("en").startswith("restricted to the provinces of Cremona, Mantova, Pavia")


def test_no_empty_quotes_when_the_rule_has_no_words_to_quote(monkeypatch: pytest.MonkeyPatch) -> None:
    # Applicants read from elsewhere (a structured field with no text span) carry no evidence.
    import notifier.matching.eligibility as eligibility

    monkeypatch.setattr(
        eligibility,
        "applicants_of",
        lambda *a, **k: eligibility.Applicants(admits=frozenset({"ente-pubblico"})),
    )
    ex = explain(call("Bando imballaggi"), PACKAGING_BG, now=NOW)
    assert ex.excluded_by == "beneficiary"
    assert "«" not in ex.detail("it") and "“" not in ex.detail("en")
    assert ex.detail("it") == "riservato a: Ente pubblico"


def test_rules_can_be_switched_off_to_compare() -> None:
    c = call("Bando imballaggi", regions=("Piemonte",), summary="Contributi ai Comuni piemontesi")
    off = MatchingConfig(eligibility_rules=False, sector_rule=False)
    assert explain(c, PACKAGING_BG, now=NOW).excluded_by == "territory"
    assert explain(c, PACKAGING_BG, now=NOW, config=off).matched


# --- the real recordings ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call_id", "rule"),
    [
        ("real-incentivi-1556", "territory"),  # PR FESR Liguria
        ("real-incentivi-1531", "territory"),  # Friuli-Venezia Giulia, agri-food processing
        ("real-incentivi-1433", "territory"),  # Provincia autonoma di Bolzano, hospitality
        ("real-incentivi-1426", "applicant-sector"),  # theatres and cinemas (ATECO 90)
        ("real-sedia-HORIZON-CL5-2026-04-Two-Stage-D3-02", "closed"),
        ("real-lombardia-RLP12026052483", "threshold"),  # Lombard SMEs: eligible, no subject
    ],
)
def test_rules_on_the_real_recordings(call_id: str, rule: str) -> None:
    calls = {c.key: c.call for c in load_relevance_set(SET, now=NOW).calls}
    broad = profile(topics=list(topic_ids()), province="BG", ateco=["22.22"])
    assert explain(calls[call_id], broad, now=NOW).excluded_by == rule


def test_the_real_tertium_eligibility_is_read() -> None:
    tertium = next(
        c.call for c in load_relevance_set(SET, now=NOW).calls if c.key == "real-lombardia-RLP12026052483"
    )
    facts = Matcher([(1, PACKAGING_BG)]).facts(tertium, now=NOW)
    assert facts.territory.regions == {"Lombardia"}
    assert facts.applicants.admits == {"micro", "pmi", "startup"}  # "le PMI secondo la definizione …"
