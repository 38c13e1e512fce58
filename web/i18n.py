"""Every text of the web pages and feeds, Italian first, English available.

Texts are plain: templates autoescape them like any other value.
"""

from __future__ import annotations

from collections.abc import Mapping

LANGUAGES = ("it", "en")

#: key → (Italian, English); placeholders ``{name}``.
TEXTS: Mapping[str, tuple[str, str]] = {
    "app.name": ("Sentinella", "Sentinella"),
    "app.tagline": (
        "Bandi per il Cluster Cosmetico lombardo",
        "Funding calls for the Lombardy cosmetics cluster",
    ),
    "nav.calls": ("Bandi", "Calls"),
    "nav.sources": ("Fonti", "Sources"),
    "nav.members": ("Soci", "Members"),
    "nav.logout": ("Esci", "Sign out"),
    "nav.language": ("Lingua", "Language"),
    "nav.switch": ("English", "Italiano"),
    "nav.skip": ("Vai al contenuto", "Skip to content"),
    # sign-in
    "signin.title": ("Accesso allo staff", "Staff sign-in"),
    "signin.help": (
        "Per entrare scrivi /web al bot Sentinella su Telegram: riceverai un link personale, "
        "valido pochi minuti e per un solo accesso. Non servono password.",
        "To sign in, send /web to the Sentinella bot on Telegram: you will get a personal link, "
        "valid for a few minutes and for one sign-in. No password needed.",
    ),
    "signin.logged_out": ("Sei uscito.", "You have signed out."),
    "signin.confirm": (
        "Questo link ti fa entrare nella bacheca dello staff da questo browser.",
        "This link signs you in to the staff board from this browser.",
    ),
    "signin.button": ("Entra", "Sign in"),
    "signin.unknown": ("Questo link di accesso non esiste.", "This sign-in link does not exist."),
    "signin.used": (
        "Questo link è già stato usato. Chiedine un altro con /web.",
        "This link has already been used. Ask for another with /web.",
    ),
    "signin.expired": (
        "Questo link è scaduto. Chiedine un altro con /web.",
        "This link has expired. Ask for another with /web.",
    ),
    # messages
    "refused.title": ("Accesso negato", "Access denied"),
    "refused.body": (
        "La bacheca è riservata allo staff del cluster e agli amministratori.",
        "The board is for the cluster's staff and administrators only.",
    ),
    "csrf.title": ("Modulo scaduto", "Form expired"),
    "csrf.body": (
        "Il modulo non è più valido (o non viene da questo sito). Torna indietro, ricarica la pagina e riprova.",
        "The form is no longer valid (or did not come from this site). Go back, reload the page and try again.",
    ),
    "not_found.title": ("Pagina non trovata", "Page not found"),
    "not_found.body": ("Non c'è niente a questo indirizzo.", "There is nothing at this address."),
    "slow_down.title": ("Troppe richieste", "Too many requests"),
    "slow_down.body": ("Attendi qualche minuto e riprova.", "Wait a few minutes and try again."),
    "generic.title": ("Errore", "Error"),
    "generic.body": ("Qualcosa è andato storto.", "Something went wrong."),
    # calls
    "calls.title": ("Bandi", "Calls"),
    "calls.filters": ("Filtri", "Filters"),
    "calls.q": ("Cerca", "Search"),
    "calls.q_hint": ("parole del titolo o del testo", "words of the title or text"),
    "calls.source": ("Fonte", "Source"),
    "calls.topic": ("Tema", "Topic"),
    "calls.phase": ("Stato", "Status"),
    "calls.from": ("Scadenza dal", "Deadline from"),
    "calls.until": ("al", "until"),
    "calls.any": ("tutte", "any"),
    "calls.any_topic": ("tutti", "any"),
    "calls.apply": ("Filtra", "Filter"),
    "calls.reset": ("Azzera", "Reset"),
    "calls.count": ("{n} bandi", "{n} calls"),
    "calls.count_one": ("1 bando", "1 call"),
    "calls.count_more": ("almeno {n} bandi", "at least {n} calls"),
    "calls.none": ("Nessun bando con questi filtri.", "No call matches these filters."),
    "calls.prev": ("← Precedenti", "← Previous"),
    "calls.next": ("Successivi →", "Next →"),
    "calls.page": ("Pagina {n}", "Page {n}"),
    "calls.no_deadline": ("senza scadenza", "no deadline"),
    "phase.active": ("aperti e in arrivo", "open and forthcoming"),
    "phase.open": ("aperto", "open"),
    "phase.forthcoming": ("in arrivo", "forthcoming"),
    "phase.closed": ("chiuso", "closed"),
    "phase.all": ("tutti", "all"),
    "phase_filter.open": ("aperti", "open"),
    "phase_filter.forthcoming": ("in arrivo", "forthcoming"),
    "phase_filter.closed": ("chiusi", "closed"),
    "phase_filter.active": ("aperti e in arrivo", "open and forthcoming"),
    "phase_filter.all": ("tutti", "all"),
    # a call
    "call.back": ("← Tutti i bandi", "← All calls"),
    "call.fields": ("Dati del bando", "Call details"),
    "call.open_source": ("Apri sul portale", "Open on the portal"),
    "call.topics": ("Temi riconosciuti", "Topics found"),
    "call.events": ("Cronologia", "History"),
    "call.no_events": ("Nessun evento registrato.", "No event recorded."),
    "call.group": ("Lo stesso bando su altri portali", "The same call on other portals"),
    "call.group_alone": ("Pubblicato solo qui.", "Published here only."),
    "call.canonical": ("principale", "main"),
    "call.matches": ("Soci segnalati e risposte", "Members alerted and their answers"),
    "call.no_matches": (
        "Nessun socio è stato segnalato per questo bando.",
        "No member was alerted of this call.",
    ),
    "call.member": ("Socio", "Member"),
    "call.reasons": ("Perché", "Why"),
    "call.deliveries": ("Invii", "Deliveries"),
    "call.feedback": ("Risposta", "Answer"),
    "call.no_feedback": ("nessuna", "none"),
    "call.this": ("questo", "this one"),
    "feedback.interested": ("Mi interessa", "Interested"),
    "feedback.not_for_us": ("Non per noi", "Not for us"),
    "event.new": ("nuovo", "new"),
    "event.changed": ("modificato", "changed"),
    "event.reopened": ("riaperto", "reopened"),
    "event.closed": ("chiuso", "closed"),
    "field.source": ("Fonte", "Source"),
    "field.status": ("Stato", "Status"),
    "field.opens": ("Apertura", "Opens"),
    "field.closes": ("Scadenza", "Deadline"),
    "field.deadlines": ("Scadenze intermedie", "Stage deadlines"),
    "field.sportello": ("A sportello", "First come, first served"),
    "field.budget": ("Dotazione", "Budget"),
    "field.contribution": ("Contributo", "Contribution"),
    "field.beneficiaries": ("Beneficiari", "Beneficiaries"),
    "field.programme": ("Programma", "Programme"),
    "field.granting_body": ("Ente", "Granting body"),
    "field.regions": ("Territorio", "Territory"),
    "field.published": ("Pubblicato", "Published"),
    "field.first_seen": ("Visto la prima volta", "First seen"),
    "field.last_changed": ("Ultima modifica", "Last changed"),
    "field.summary": ("Sintesi", "Summary"),
    "field.yes": ("sì", "yes"),
    "field.no": ("no", "no"),
    "field.range": ("da {low} a {high}", "{low} to {high}"),
    "field.up_to": ("fino a {high}", "up to {high}"),
    "field.from": ("da {low}", "from {low}"),
    # sources
    "sources.title": ("Stato delle fonti", "Source health"),
    "sources.none": ("Nessuna fonte ancora interrogata.", "No source crawled yet."),
    "sources.last_run": ("Ultimo giro", "Last run"),
    "sources.last_success": ("Ultimo successo", "Last success"),
    "sources.failures": ("Errori di fila", "Failures in a row"),
    "sources.calls": ("Bandi", "Calls"),
    "sources.runs": ("Ultimi giri", "Last runs"),
    "sources.outcome": ("Esito", "Outcome"),
    "sources.counts": (
        "visti {seen} · nuovi {new} · modificati {changed} · errori {errors}",
        "seen {seen} · new {new} · changed {changed} · errors {errors}",
    ),
    "sources.reason": ("Motivo", "Reason"),
    "sources.degraded": ("degradata", "degraded"),
    "sources.ok": ("regolare", "healthy"),
    "sources.failing": ("in errore", "failing"),
    "sources.never": ("mai", "never"),
    "sources.not_run": ("mai interrogata", "never crawled"),
    # members
    "members.title": ("Soci", "Members"),
    "members.readonly": (
        "Sola lettura: i profili si modificano dal bot (/profilo) o dalla riga di comando.",
        "Read-only: profiles are edited in the bot (/profilo) or on the command line.",
    ),
    "members.none": ("Nessun socio.", "No member."),
    "members.role": ("Ruolo", "Role"),
    "members.topics": ("Temi", "Topics"),
    "members.keywords": ("Parole chiave", "Keywords"),
    "members.exclude": ("Escluse", "Excluded"),
    "members.channels": ("Canali", "Channels"),
    "members.delivery": ("Invii", "Deliveries"),
    "members.last_sent": ("ultimo invio", "last sent"),
    "members.last_error": ("ultimo errore", "last error"),
    "members.no_profile": ("profilo non compilato", "no profile yet"),
    "members.invalid_profile": ("profilo non valido", "invalid profile"),
    "members.telegram_off": ("Telegram bloccato", "Telegram blocked"),
    "members.no_chat": ("senza Telegram", "no Telegram"),
    "members.paused": ("in pausa", "paused"),
    "members.inactive": ("disattivato", "disabled"),
    "members.digest": ("riepilogo", "digest"),
    "members.none_sent": ("nessun invio", "nothing sent"),
    "role.member": ("socio", "member"),
    "role.staff": ("staff", "staff"),
    "role.admin": ("amministratore", "administrator"),
    "state.pending": ("in coda", "pending"),
    "state.sending": ("in invio", "sending"),
    "state.sent": ("inviati", "sent"),
    "state.failed": ("da ritentare", "to retry"),
    "state.dead": ("falliti", "failed"),
    # unsubscribe
    "unsub.title": ("Disiscrizione", "Unsubscribe"),
    "unsub.confirm_alerts": (
        "Vuoi smettere di ricevere le segnalazioni di bandi per e-mail? Su Telegram continuerai a riceverle.",
        "Stop receiving call alerts by e-mail? You will still get them on Telegram.",
    ),
    "unsub.confirm_digest": (
        "Vuoi smettere di ricevere il riepilogo quotidiano per e-mail?",
        "Stop receiving the daily digest by e-mail?",
    ),
    "unsub.button": ("Disiscrivimi", "Unsubscribe me"),
    "unsub.done_alerts": (
        "Fatto: non riceverai più segnalazioni per e-mail. Puoi riattivarle dal bot con /profilo.",
        "Done: you will no longer receive alerts by e-mail. You can turn them back on in the bot with /profilo.",
    ),
    "unsub.done_digest": (
        "Fatto: non riceverai più il riepilogo per e-mail.",
        "Done: you will no longer receive the digest by e-mail.",
    ),
    "unsub.unknown": (
        "Questo link di disiscrizione non è valido. Rispondi a un nostro messaggio scrivendo «unsubscribe».",
        "This unsubscribe link is not valid. Reply to one of our messages with \u201cunsubscribe\u201d.",
    ),
    # feeds and calendars
    "ical.deadline": ("Scadenza", "Deadline"),
    "ical.opening": ("Apertura", "Opening"),
    "ical.member_name": ("Sentinella: le mie scadenze", "Sentinella: my deadlines"),
    "ical.public_name": ("Sentinella: bandi aperti", "Sentinella: open calls"),
    "feed.title": ("Sentinella: bandi aperti", "Sentinella: open calls"),
    "feed.description": (
        "Bandi di finanziamento aperti e in arrivo, raccolti per il Cluster Cosmetico lombardo.",
        "Open and forthcoming funding calls, gathered for the Lombardy cosmetics cluster.",
    ),
}


def text(lang: str, key: str, **values: object) -> str:
    """The text ``key`` in ``lang`` (Italian for anything but ``en``), placeholders filled."""
    pair = TEXTS[key]
    template = pair[1] if lang == "en" else pair[0]
    return template.format(**values) if values else template
