"""The relevance rules, each on a real sentence of the shared labelled set (../shared/relevance,
calls.jsonl; the call id and the labelling rule of RULES.md are named in each test). Every test
would fail if its rule were removed: it checks the rule's own verdict through ``explain`` and that
the fast path agrees."""

from __future__ import annotations

from notifier.matching.engine import Matcher, explain
from notifier.matching.profiles import Profile, member_profile
from storage.calls import CallView
from tests.fakes.matching_data import NOW, call, profile

PACKAGING = profile(topics=["packaging", "internazionalizzazione", "digitale"], beneficiaries=["pmi"])
DIGITAL = profile(topics=["digitale", "ricerca-innovazione"], beneficiaries=["grande-impresa"])
CREDIT = profile(topics=["credito-liquidita"], beneficiaries=["micro"])
UNIVERSITY = profile(
    topics=["ricerca-innovazione", "qualita-regolatorio", "ingredienti-biotech"], beneficiaries=["ricerca"]
)
ARTISAN = profile(topics=["investimenti-produttivi"], keywords=["impresa artigiana"], beneficiaries=["micro"])
MAKER = profile(topics=["investimenti-produttivi", "internazionalizzazione"], beneficiaries=["pmi"])


def verdict(c: CallView, p: Profile) -> str | None:
    ex = explain(c, p, now=NOW)
    assert bool(Matcher([(1, p)]).match(c, now=NOW)) == ex.matched
    return ex.excluded_by


# --- 1. mentions are not targets (B4) ------------------------------------------------------------


def test_a_sector_named_in_passing_does_not_exclude() -> None:
    # d053 (Bando Digital Export 2022): the chambers' full name mentions agriculture.
    c = call(
        "Bando Digital Export 2022 – Nuovi mercati per le imprese lombarde",
        summary="Le risorse complessivamente ammontano a 1.640.000,00 euro a carico delle Camere di "
        "commercio Industria Artigianato e Agricoltura della Lombardia. Export digitale e internazionalizzazione.",
        beneficiaries=("essere micro, piccola o media impresa",),
        regions=("Lombardia",),
    )
    member = profile(topics=["internazionalizzazione"], exclude=["agricoltura"], beneficiaries=["pmi"])
    assert verdict(c, member) is None
    # … while a title about the excluded sector still excludes.
    assert verdict(call("Agricoltura: export e internazionalizzazione"), member) == "exclusion"


# --- 2. theme words are not purpose (B2, B3) -----------------------------------------------------


def test_a_thematic_research_topic_needs_the_members_own_domain() -> None:
    # d007: a Digital Europe topic on cybersecurity is not "digitale" for a firm adopting tools.
    c = call(
        "Supporting The NIS Directive Implementation And National Cybersecurity Strategies",
        summary="The action focuses on Member States and European capacity building and the enhancement of "
        "cross-border cooperation on cybersecurity. Digital transformation and digital technologies.",
        programme="Digital Europe Programme — Cybersecurity",
    )
    assert verdict(c, DIGITAL) == "thematic"
    assert "Digital Europe" in explain(c, DIGITAL, now=NOW).detail("en")


def test_the_domain_named_in_a_thematic_topic_counts() -> None:
    # d044: a CBE JU topic whose domain is packaging reaches the packaging maker.
    c = call(
        "Circular fibre-based packaging with enhanced properties (CBE JU flagship)",
        programme="Circular Bio-based Europe Joint Undertaking (CBE JU) — Horizon Europe",
    )
    assert verdict(c, PACKAGING) is None


def test_the_programme_is_not_the_purpose() -> None:
    # d057: "Horizon Europe" as a member's keyword matched every Horizon topic by its programme.
    c = call(
        "Post-Li-ion technologies and relevant manufacturing techniques for mobility applications",
        programme="Horizon Europe — Cluster 5 (Batt4EU Partnership)",
    )
    member = profile(topics=["ricerca-innovazione"], keywords=["Horizon Europe"], beneficiaries=["ricerca"])
    assert explain(c, member, now=NOW).score == 0
    # d091: nor is a member's keyword that names the programme, met in a thematic topic's summary.
    c = call(
        "Additional activities for the European Partnership of Agriculture of Data",
        summary="The partnership, funded under Horizon Europe, will continue its data activities.",
        programme="Horizon Europe — Cluster 6",
    )
    assert explain(c, member, now=NOW).score == 0


# --- 3. applicants read as applicants (A1, A5, B5) -----------------------------------------------


def test_intermediaries_are_not_the_firms_they_serve() -> None:
    # d043 (Controgaranzie 2): the applicants are guarantee consortia, not the SMEs they guarantee.
    c = call(
        "Garanzie per facilitare accesso al credito – Linea di intervento Controgaranzie 2",
        summary="Garanzie per le PMI lombarde e accesso al credito.",
        beneficiaries=("Possono presentare domanda i Consorzi di Garanzia Collettiva fidi (Confidi) che siano iscritti "
                       "nell’elenco di cui all’art. 155 TUB",),
    )  # fmt: skip
    assert verdict(c, CREDIT) == "beneficiary"
    assert "Confidi" in explain(c, CREDIT, now=NOW).detail("it")


def test_cluster_calls_reach_the_clusters_staff_only() -> None:
    # d001 (Cluster Tecnologici per l'Innovazione 2025): staff speak for the cluster (B5).
    c = call(
        "Cluster Tecnologici per l'Innovazione – Edizione 2025",
        summary="Ricerca e innovazione, trasferimento tecnologico e progetti di ricerca per gli ecosistemi.",
        beneficiaries=("Cluster Tecnologici Lombardi (CTL) riconosciuti da Regione Lombardia.",),
    )
    data = {"topics": ["ricerca-innovazione"], "beneficiaries": ["pmi"]}
    assert verdict(c, member_profile("member", data)) == "beneficiary"
    assert verdict(c, member_profile("staff", data)) is None


def test_applicants_named_as_examples_restrict_nothing() -> None:
    # d092 (EIC Transition): "such as SMEs, spin-offs, start-ups, research organisations".
    c = call(
        "EIC Transition: technology maturation, research and innovation",
        beneficiaries=("Individual applicants such as SMEs, spin-offs, start-ups, research organisations or "
                       "universities, as well as small consortia are all eligible to apply.",),
        programme="Horizon Europe — European Innovation Council",
    )  # fmt: skip
    large = profile(topics=["ricerca-innovazione"], beneficiaries=["grande-impresa"])
    assert verdict(c, large) is None


def test_a_list_of_kinds_of_organisation_is_not_a_size_limit() -> None:
    # d082 (Integration of NAMs): enterprises beside public bodies and research institutions.
    c = call(
        "Integration of New Approach Methodologies (NAMs) for safety assessment",
        beneficiaries=("- Innovative SMEs, startups and enterprises aiming to scale\n- Public-sector organisations "
                       "driving transformation\n- Research and academic institutions commercialising knowledge",),
    )  # fmt: skip
    testing_lab = profile(topics=["qualita-regolatorio"], beneficiaries=["grande-impresa"])
    assert verdict(c, testing_lab) is None
    assert verdict(c, UNIVERSITY) is None


def test_research_careers_are_for_research_bodies() -> None:
    # d055 (MSCA Postdoctoral Fellowships): companies may host, the call funds researchers (H10).
    c = call(
        "MSCA Postdoctoral Fellowships 2024",
        summary="Training, skills and career development of researchers.",
        programme="Horizon Europe — Marie Skłodowska-Curie Actions",
        beneficiaries=("Applications will be made jointly by the researcher and a beneficiary in the academic "
                       "or non-academic sector.",),
    )  # fmt: skip
    assert verdict(c, UNIVERSITY) is None
    assert verdict(c, DIGITAL) == "beneficiary"


def test_a_small_firm_of_unknown_size_may_apply_to_a_micro_firm_call() -> None:
    # d059 (Voucher 3I): "startup innovative e microimprese"; a PMI may be micro (A1, A4).
    c = call(
        "Voucher 3I – Investire in innovazione e brevetti",
        beneficiaries=("startup innovative e microimprese",),
    )
    assert verdict(c, profile(topics=["ricerca-innovazione"], beneficiaries=["pmi"])) is None
    assert (
        verdict(c, profile(topics=["ricerca-innovazione"], beneficiaries=["grande-impresa"])) == "beneficiary"
    )


def test_the_funders_name_is_not_an_applicant() -> None:
    # d026: "Fondazione Cariplo" in the title and the eligibility text names the funder.
    c = call(
        "Ricerca integrata sulle biotecnologie industriali e sulla bioeconomia (Fondazione Cariplo)",
        summary="Progetti di ricerca applicata e trasferimento tecnologico.",
        beneficiaries=("Il bando è rivolto a enti che svolgono direttamente attività di ricerca scientifica; il "
                       "capofila ha sede nell’area territoriale di riferimento della Fondazione Cariplo.",),
        granting_body="Fondazione Cariplo",
    )  # fmt: skip
    assert verdict(c, UNIVERSITY) is None


# --- 4. sector reservations (A3) -----------------------------------------------------------------


def test_ateco_codes_in_the_eligibility_text_reserve_the_call() -> None:
    # d048 (Incoming di buyer esteri a Tuttofood): food and drink industries only.
    c = call(
        "Bando per l’internazionalizzazione delle pmi lombarde – Incoming di buyer esteri",
        beneficiaries=("- rientrare nella classificazione ATECO 2007 con i codici C-10 “Industrie Alimentari” e "
                       "C-11 “Industrie delle Bevande”;\n- non essere imprese agricole;",),
    )  # fmt: skip
    assert verdict(c, MAKER) == "applicant-sector"


def test_artisan_calls_reach_artisans() -> None:
    # d024 (Agevolazioni finanziarie per l’artigianato lombardo).
    c = call(
        "Agevolazioni finanziarie per l’artigianato lombardo",
        summary="Investimenti in macchinari, attrezzature e impianti produttivi.",
        beneficiaries=("Le imprese artigiane lombarde",),
    )
    assert verdict(c, ARTISAN) is None
    assert verdict(c, MAKER) == "applicant-sector"
    # Staff speak for every member's sector.
    staff = member_profile("staff", {"topics": ["investimenti-produttivi"], "beneficiaries": ["pmi"]})
    matched = {m.member_id for m in Matcher([(1, ARTISAN), (2, MAKER), (3, staff)]).match(c, now=NOW)}
    assert matched == {1, 3}


def test_a_title_naming_a_sector_reserves_the_call() -> None:
    c = call(
        "Contributi per la meccanizzazione delle aziende agricole di montagna",
        summary="Investimenti in macchinari e attrezzature.",
        beneficiaries=("PMI",),
    )
    assert verdict(c, MAKER) == "applicant-sector"


def test_any_size_is_not_a_sector_reservation() -> None:
    # d047 (Progetti di R&S per l’economia circolare): activities listed, not reserved.
    c = call(
        "Progetti di R&S per l’economia circolare",
        beneficiaries=("Imprese di qualsiasi dimensione che esercitano attività industriali, agroindustriali, "
                       "artigiane, di servizi all’industria e centri di ricerca",),
    )  # fmt: skip
    assert verdict(c, profile(topics=["ricerca-innovazione"], beneficiaries=["grande-impresa"])) is None


# --- 5. purpose before words (B2) ----------------------------------------------------------------


def test_the_title_says_what_the_call_is_for() -> None:
    # d076 (voucher formativo aziendale): training is the purpose; the productive processes and
    # the digital transition of the summary are what the training is about.
    c = call(
        "Bando per la presentazione delle richieste di voucher formativo aziendale sulla linea competenze",
        summary="Supportare l’adattamento delle imprese e dei lavoratori rispetto alle profonde trasformazioni dei "
        "processi produttivi; competenze per la transizione digitale e l'innovazione tecnologica.",
    )
    maker = profile(topics=["digitale", "investimenti-produttivi"], beneficiaries=["pmi"])
    trainer = profile(topics=["formazione-lavoro"], beneficiaries=["pmi"])
    assert verdict(c, maker) == "purpose"
    assert verdict(c, trainer) is None


# --- 6. staff hear of what members hear of (B5) --------------------------------------------------


def test_staff_get_every_call_a_member_gets() -> None:
    # d084 (SSbD alternatives): the chemistry department's keywords match; the cluster's staff,
    # whose own profile says "ingredients" only in passing there, get it with the count of members.
    c = call(
        "Development of safe and sustainable by design alternatives",
        summary="Proof of concept of SSbD alternatives, e.g. surfactants, for the chemical industry.",
        programme="Horizon Europe — Cluster 4 (Resilience)",
    )
    department = profile(topics=["ricerca-innovazione"], keywords=["safe and sustainable by design"],
                         beneficiaries=["ricerca"])  # fmt: skip
    staff = member_profile("staff", {"topics": ["ingredienti-biotech"], "beneficiaries": ["pmi"]})
    matcher = Matcher([(1, department), (2, staff)])
    matched = {m.member_id: m for m in matcher.match(c, now=NOW)}
    assert set(matched) == {1, 2}
    assert matched[2].reasons[0].kind == "members"
    assert matched[2].reasons[0].line("it") == "lo riceve 1 membro del cluster"
    ex = matcher.explain(c, 2, now=NOW)
    assert ex.matched and ex.reasons[0].kind == "members"
    # Alone, the staff profile would not have matched.
    assert not Matcher([(2, staff)]).match(c, now=NOW)


def test_what_a_member_makes_counts_whatever_the_purpose() -> None:
    # A product-innovation call for the cosmetics supply chain reaches the packaging maker through
    # its packaging words, though innovation (not one of its topics) is what the title says.
    c = call(
        "Innovazione di prodotto nella filiera cosmetica",
        summary="Nuovi flaconi, vasetti e packaging riciclabile per i prodotti cosmetici.",
    )
    packaging = profile(topics=["packaging", "investimenti-produttivi"], beneficiaries=["pmi"])
    assert verdict(c, packaging) is None


def test_an_area_of_regions_restricts_like_a_region() -> None:
    # d011 (Macchinari Innovativi): "le PMI delle regioni del Meridione"; d037: "Regioni del Mezzogiorno".
    for title, beneficiaries in (
        ("Bando Macchinari Innovativi: il nuovo finanziamento per le PMI del Sud Italia", "PMI"),
        (
            "Bando Macchinari Innovativi 2020",
            "La nuova misura si concentra sulle PMI delle regioni del Meridione",
        ),
    ):
        c = call(
            title, summary="Acquisto di macchinari, impianti e attrezzature.", beneficiaries=(beneficiaries,)
        )
        assert verdict(c, MAKER) == "territory"
