"""Every text the bot says, in Italian (the default) and English, in one place.

:func:`t` picks a text by key and language and fills its placeholders. Templates are Telegram
HTML written here; the values put into them are escaped with ``html.escape`` unless they are
wrapped in :class:`Html` (markup already built from escaped parts). So a call title, a member's
name or a keyword typed by a member can never inject markup.

A member's language is the one stored on the member (``/lingua`` changes it). A chat that is not
a member yet is answered in the language its Telegram client reports: Italian for ``it`` or no
code, English for any other code (someone whose phone is set to another language reads English
more easily than Italian).

Known limits: only two languages; plural forms are chosen with two keys where needed.
"""

from __future__ import annotations

import html
import string
from collections.abc import Mapping

LANGUAGES = ("it", "en")
DEFAULT_LANGUAGE = "it"


class Html(str):
    """Markup already escaped (built by the bot from escaped parts): inserted as it is."""

    __slots__ = ()


def esc(value: object) -> str:
    """A value as Telegram HTML text (``<``, ``>``, ``&`` and quotes escaped)."""
    if isinstance(value, Html):
        return value
    return html.escape(str(value), quote=True)


def normalise_language(code: str | None) -> str:
    """A stored or requested language: ``it``/``en`` (``en-GB`` → ``en``); default Italian."""
    if not code:
        return DEFAULT_LANGUAGE
    head = code.strip().lower().replace("_", "-").split("-", 1)[0]
    return head if head in LANGUAGES else DEFAULT_LANGUAGE


def language_from_telegram(code: str | None) -> str:
    """The language for a chat that is not a member yet, from Telegram's ``language_code``."""
    if not code:
        return DEFAULT_LANGUAGE
    return "it" if code.strip().lower().startswith("it") else "en"


#: key → (Italian, English). Placeholders are ``{name}``; both languages use the same ones.
TEXTS: Mapping[str, tuple[str, str]] = {
    # --- onboarding and access ---------------------------------------------------------------
    "start.need_code": (
        "Ciao! Sono <b>Sentinella</b>, il servizio che segnala ai soci del Cluster Cosmetico "
        "lombardo i bandi di finanziamento adatti a loro.\n\n"
        "L'accesso è solo su invito: chiedi allo staff del cluster il tuo link personale "
        "(t.me/…?start=…) e aprilo da questo telefono.",
        "Hello! I am <b>Sentinella</b>: I tell the members of the Lombardy Cosmetics Cluster "
        "about the funding calls that fit them.\n\n"
        "Access is by invitation only: ask the cluster staff for your personal link "
        "(t.me/…?start=…) and open it from this phone.",
    ),
    "unknown_chat": (
        "Questa chat non è collegata a nessun socio, quindi non posso fare nulla per te.\n"
        "Per usare Sentinella apri il link d'invito personale che ti ha dato lo staff del cluster.",
        "This chat is not linked to any member, so I cannot do anything for you yet.\n"
        "To use Sentinella, open the personal invitation link the cluster staff gave you.",
    ),
    "private_only": (
        "Sentinella risponde solo in una chat privata: i bandi, il profilo e gli inviti sono "
        "personali. Scrivimi direttamente aprendo il mio profilo e premendo «Avvia».",
        "Sentinella only answers in a private chat: calls, profiles and invitations are personal. "
        "Write to me directly by opening my profile and pressing “Start”.",
    ),
    "start.welcome": (
        "Benvenuto/a, <b>{name}</b>! Questa chat è ora collegata a Sentinella.\n\n"
        "Ti scriverò quando esce un bando adatto al tuo profilo. Impostiamolo subito: "
        "scegli gli argomenti che ti interessano qui sotto (potrai cambiarli con /profilo).\n"
        "Tutti i comandi: /aiuto",
        "Welcome, <b>{name}</b>! This chat is now linked to Sentinella.\n\n"
        "I will write when a call fits your profile. Let's set it up now: pick the topics you "
        "care about below (you can change them any time with /profilo).\n"
        "All commands: /aiuto",
    ),
    "start.already": (
        "Sei già registrato/a come <b>{name}</b>. Scrivi /aiuto per i comandi.",
        "You are already registered as <b>{name}</b>. Send /aiuto for the commands.",
    ),
    "start.back": (
        "Bentornato/a, <b>{name}</b>! Avevi bloccato il bot: da ora ricevi di nuovo gli avvisi "
        "qui su Telegram. Scrivi /aiuto per i comandi.",
        "Welcome back, <b>{name}</b>! You had blocked the bot: from now on you get alerts here on "
        "Telegram again. Send /aiuto for the commands.",
    ),
    "start.code_unknown": (
        "Questo codice d'invito non è valido. Controlla di aver aperto il link completo, "
        "oppure chiedi un nuovo invito allo staff del cluster.",
        "This invitation code is not valid. Check that you opened the whole link, "
        "or ask the cluster staff for a new invitation.",
    ),
    "start.code_used": (
        "Questo invito è già stato usato: ogni invito vale una sola volta. "
        "Chiedine uno nuovo allo staff del cluster.",
        "This invitation has already been used: each invitation works once. "
        "Ask the cluster staff for a new one.",
    ),
    "start.code_expired": (
        "Questo invito è scaduto. Chiedine uno nuovo allo staff del cluster.",
        "This invitation has expired. Ask the cluster staff for a new one.",
    ),
    "start.code_conflict": (
        "Questo invito è intestato a un'altra persona, mentre questa chat è già collegata a un socio. "
        "Chiedi allo staff del cluster di verificare.",
        "This invitation is for someone else, and this chat already belongs to a member. "
        "Ask the cluster staff to check.",
    ),
    "start.too_many": (
        "Troppi tentativi con codici non validi da questa chat. Riprova più tardi.",
        "Too many attempts with invalid codes from this chat. Please try again later.",
    ),
    "start.busy": (
        "Troppi tentativi con codici non validi in questo momento. Riprova fra un'ora.",
        "Too many attempts with invalid codes right now. Please try again in an hour.",
    ),
    "inactive": (
        "Il tuo accesso a Sentinella è sospeso. Per riattivarlo contatta lo staff del cluster.",
        "Your access to Sentinella is suspended. Contact the cluster staff to restore it.",
    ),
    # --- help --------------------------------------------------------------------------------
    "help.member": (
        "<b>Sentinella</b> — i comandi\n"
        "/bandi — i bandi aperti adatti al tuo profilo, per scadenza\n"
        "/cerca TESTO — cerca tra i bandi aperti\n"
        "/scadenze — i bandi che ti interessano e le loro scadenze\n"
        "/profilo — vedi e modifica il tuo profilo\n"
        "/pausa e /riprendi — sospendi o riprendi gli avvisi\n"
        "/lingua — italiano o inglese\n"
        "/calendario — le tue scadenze nel tuo calendario (Outlook, Google…)\n"
        "/cancellami — cancella i tuoi dati\n\n"
        "Sotto ogni avviso: «Mi interessa» attiva i promemoria delle scadenze, "
        "«Non per noi» ferma ogni altro messaggio su quel bando.",
        "<b>Sentinella</b> — commands\n"
        "/bandi — open calls that fit your profile, by deadline\n"
        "/cerca TEXT — search the open calls\n"
        "/scadenze — the calls you are interested in and their deadlines\n"
        "/profilo — see and edit your profile\n"
        "/pausa and /riprendi — pause or resume alerts\n"
        "/lingua — Italian or English\n"
        "/calendario — your deadlines in your calendar (Outlook, Google…)\n"
        "/cancellami — delete your data\n\n"
        "Under each alert: “Interested” turns on deadline reminders, "
        "“Not for us” stops every further message about that call.",
    ),
    "help.staff": (
        "\n\n<b>Staff</b>\n/digest on|off — il riepilogo quotidiano anche su Telegram\n"
        "/web — un link per entrare nella bacheca web",
        "\n\n<b>Staff</b>\n/digest on|off — the daily digest on Telegram too\n"
        "/web — a link to sign in to the web board",
    ),
    "help.admin": (
        "\n\n<b>Amministrazione</b>\n"
        "/crawl [FONTE] — avvia subito la raccolta (tutte le fonti o una)\n"
        "/stato — salute delle fonti, coda degli invii, ultimo riepilogo\n"
        "/invita [member|staff|admin] — crea un link d'invito\n"
        "/membri — elenco dei soci",
        "\n\n<b>Administration</b>\n"
        "/crawl [SOURCE] — crawl now (every source or one)\n"
        "/stato — source health, delivery queue, last digest\n"
        "/invita [member|staff|admin] — make an invitation link\n"
        "/membri — list the members",
    ),
    "unknown_command": (
        "Non conosco questo comando. Scrivi /aiuto per l'elenco.",
        "I do not know this command. Send /aiuto for the list.",
    ),
    "unknown_text": (
        "Non ho capito. Scrivi /aiuto per l'elenco dei comandi.",
        "I did not understand. Send /aiuto for the list of commands.",
    ),
    "error.generic": (
        "Qualcosa è andato storto e non sono riuscito a completare la richiesta. "
        "Riprova tra poco; se il problema resta, avvisa lo staff del cluster.",
        "Something went wrong and I could not complete the request. "
        "Please try again shortly; if it keeps happening, tell the cluster staff.",
    ),
    "button.stale": (
        "Questo pulsante non è più valido.",
        "This button is no longer valid.",
    ),
    # --- calls: /bandi, /cerca, /scadenze ----------------------------------------------------
    "call.closes": ("Scadenza: {date} — {countdown}", "Deadline: {date} — {countdown}"),
    "call.opens": ("Apertura: {date} — {countdown}", "Opens: {date} — {countdown}"),
    "call.sportello": ("A sportello, fino a esaurimento fondi", "First come, first served"),
    "call.no_deadline": ("Scadenza non indicata", "No deadline given"),
    "call.why": ("Perché: {reasons}", "Why: {reasons}"),
    "call.link": ("Apri il bando", "Open the call"),
    "bandi.header": (
        "<b>Bandi aperti per te</b> — {total} in tutto, pagina {page} di {pages}",
        "<b>Open calls for you</b> — {total} in all, page {page} of {pages}",
    ),
    "bandi.none": (
        "Al momento nessun bando aperto corrisponde al tuo profilo. "
        "Puoi ampliarlo con /profilo o cercare con /cerca.",
        "No open call fits your profile right now. You can widen it with /profilo or search with /cerca.",
    ),
    "bandi.no_profile": (
        "Il tuo profilo è vuoto: scegli almeno un argomento o una parola chiave con /profilo.",
        "Your profile is empty: pick at least one topic or keyword with /profilo.",
    ),
    "bandi.bad_profile": (
        "Il tuo profilo salvato non è più valido ({detail}). Correggilo con /profilo.",
        "Your saved profile is no longer valid ({detail}). Fix it with /profilo.",
    ),
    "bandi.mark_hint": (
        "⭐ N = «Mi interessa» per il bando N (promemoria delle scadenze).",
        "⭐ N = “Interested” in call N (deadline reminders).",
    ),
    "nav.prev": ("« Precedenti", "« Previous"),
    "nav.next": ("Successivi »", "Next »"),
    "cerca.usage": (
        "Scrivi cosa cercare dopo il comando, per esempio: /cerca packaging riciclabile",
        "Write what to look for after the command, for example: /cerca recyclable packaging",
    ),
    "cerca.too_short": (
        "Il testo da cercare è troppo corto: almeno {min} caratteri.",
        "The search text is too short: at least {min} characters.",
    ),
    "cerca.too_long": (
        "Il testo da cercare è troppo lungo: al massimo {max} caratteri.",
        "The search text is too long: at most {max} characters.",
    ),
    "cerca.none": (
        "Nessun bando aperto contiene «{query}».",
        "No open call contains “{query}”.",
    ),
    "cerca.header": (
        "<b>Bandi aperti con «{query}»</b> — {total}",
        "<b>Open calls with “{query}”</b> — {total}",
    ),
    "cerca.more": (
        "…e altri {more}: restringi la ricerca con più parole.",
        "…and {more} more: narrow the search with more words.",
    ),
    "scadenze.none": (
        "Non hai bandi segnati come interessanti. Premi «Mi interessa» sotto un avviso "
        "(o ⭐ in /bandi) per ricevere i promemoria delle scadenze.",
        "You have not marked any call as interesting. Press “Interested” under an alert "
        "(or ⭐ in /bandi) to get deadline reminders.",
    ),
    "scadenze.header": ("<b>I tuoi promemoria</b> — {total} bandi", "<b>Your reminders</b> — {total} calls"),
    "scadenze.when": (
        "Ti ricordo le scadenze {offsets} prima.",
        "I remind you {offsets} before each deadline.",
    ),
    "offset.h1": ("{n} ora", "{n} hour"),
    "offset.hn": ("{n} ore", "{n} hours"),
    "offset.d1": ("{n} giorno", "{n} day"),
    "offset.dn": ("{n} giorni", "{n} days"),
    "list.and": (" e ", " and "),
    "scadenze.off": (
        "I promemoria sono disattivati nel tuo profilo (/profilo → Avvisi).",
        "Reminders are switched off in your profile (/profilo → Alerts).",
    ),
    "scadenze.paused": (
        "Gli avvisi sono in pausa: scrivi /riprendi per ricevere i promemoria.",
        "Alerts are paused: send /riprendi to get the reminders.",
    ),
    "scadenze.passed": ("nessuna scadenza futura", "no upcoming deadline"),
    "scadenze.stage": ("{label}: {date} — {countdown}", "{label}: {date} — {countdown}"),
    "fb.interested": (
        "Segnato: riceverai i promemoria delle scadenze di questo bando.",
        "Noted: you will get deadline reminders for this call.",
    ),
    "fb.not_for_us": (
        "Segnato: non riceverai altri messaggi su questo bando.",
        "Noted: you will get no further messages about this call.",
    ),
    "fb.gone": ("Questo bando non è più disponibile.", "This call is no longer available."),
    # --- pause, language, delete -------------------------------------------------------------
    "pausa.done": (
        "Avvisi in pausa: non ti scriverò finché non mandi /riprendi. Il profilo resta salvato.",
        "Alerts paused: I will not write until you send /riprendi. Your profile is kept.",
    ),
    "pausa.already": (
        "Gli avvisi sono già in pausa. /riprendi per riattivarli.",
        "Alerts are already paused. /riprendi turns them back on.",
    ),
    "riprendi.done": (
        "Avvisi riattivati: ti scriverò di nuovo quando esce un bando adatto a te.",
        "Alerts back on: I will write again when a call fits you.",
    ),
    "riprendi.already": ("Gli avvisi sono già attivi.", "Alerts are already on."),
    "lingua.choose": (
        "Lingua attuale: italiano. Scegli la lingua dei messaggi:",
        "Current language: English. Choose the language of my messages:",
    ),
    "lingua.done": ("D'ora in poi ti scrivo in italiano.", "From now on I will write in English."),
    "lingua.unknown": (
        "Lingua non disponibile: «{value}». Scegli tra it (italiano) ed en (English).",
        "Language not available: “{value}”. Choose it (Italiano) or en (English).",
    ),
    "cancel.confirm": (
        "Vuoi davvero cancellare i tuoi dati? Profilo, preferenze e segnalazioni saranno eliminati "
        "e questa chat non riceverà più avvisi. L'operazione non si può annullare.",
        "Do you really want to delete your data? Profile, preferences and feedback will be erased "
        "and this chat will get no more alerts. This cannot be undone.",
    ),
    "cancel.yes": ("Sì, cancella tutto", "Yes, delete everything"),
    "cancel.no": ("No, lascia tutto com'è", "No, keep everything"),
    "cancel.done": (
        "I tuoi dati sono stati cancellati. Per tornare a usare Sentinella serve un nuovo invito.",
        "Your data has been deleted. To use Sentinella again you need a new invitation.",
    ),
    "cancel.kept": ("Va bene, non ho cancellato nulla.", "All right, nothing was deleted."),
    # --- profile -----------------------------------------------------------------------------
    "profile.title": ("<b>Il tuo profilo</b>", "<b>Your profile</b>"),
    "profile.topics": ("Argomenti", "Topics"),
    "profile.keywords": ("Parole chiave", "Keywords"),
    "profile.exclude": ("Esclusioni", "Exclusions"),
    "profile.beneficiaries": ("Beneficiari", "Beneficiaries"),
    "profile.sources": ("Fonti", "Sources"),
    "profile.min_budget": ("Dotazione minima", "Minimum budget"),
    "profile.channels": ("Canali", "Channels"),
    "profile.alerts": ("Avvisi", "Alerts"),
    "profile.territory": ("Territorio", "Territory"),
    "profile.none": ("—", "—"),
    "profile.all": ("tutte", "all"),
    "profile.any": ("qualsiasi", "any"),
    "profile.paused": ("⏸ Avvisi in pausa (/riprendi).", "⏸ Alerts paused (/riprendi)."),
    "profile.no_channel": (
        "⚠️ Nessun canale scelto: non riceverai avvisi.",
        "⚠️ No channel chosen: you will get no alerts.",
    ),
    "profile.territory_note": (
        "Territorio e codici ATECO si cambiano tramite lo staff.",
        "Territory and ATECO codes are changed through the staff.",
    ),
    "profile.menu_hint": ("Cosa vuoi modificare?", "What would you like to change?"),
    "profile.btn.done": ("✔ Fatto", "✔ Done"),
    "profile.btn.back": ("« Indietro", "« Back"),
    "profile.pick.t": (
        "<b>Argomenti</b>: tocca per attivare ✅ o disattivare.",
        "<b>Topics</b>: tap to switch on ✅ or off.",
    ),
    "profile.pick.b": (
        "<b>Beneficiari</b>: che tipo di soggetto siete? (nessuna scelta = qualsiasi)",
        "<b>Beneficiaries</b>: what kind of applicant are you? (none chosen = any)",
    ),
    "profile.pick.s": (
        "<b>Fonti</b>: da quali portali vuoi avvisi? (nessuna scelta = tutte)",
        "<b>Sources</b>: which portals do you want alerts from? (none chosen = all)",
    ),
    "profile.pick.c": (
        "<b>Canali</b>: dove vuoi ricevere gli avvisi?",
        "<b>Channels</b>: where do you want alerts?",
    ),
    "profile.pick.a": (
        "<b>Avvisi</b>: quali messaggi vuoi ricevere?",
        "<b>Alerts</b>: which messages do you want?",
    ),
    "profile.ask.keywords": (
        "Scrivimi le <b>parole chiave</b> da aggiungere, separate da virgole "
        "(es. <i>flaconi riciclabili, airless</i>).\n"
        "Per toglierne una scrivila con il meno davanti (<i>-airless</i>); «nessuna» le toglie tutte.\n"
        "Ora: {current}\n/annulla per lasciar perdere.",
        "Send me the <b>keywords</b> to add, separated by commas "
        "(e.g. <i>recyclable bottles, airless</i>).\n"
        "To remove one, put a minus in front (<i>-airless</i>); “none” removes them all.\n"
        "Now: {current}\n/annulla to leave it.",
    ),
    "profile.ask.exclude": (
        "Scrivimi le <b>esclusioni</b> (parole che rendono un bando non adatto), separate da virgole "
        "(es. <i>agricoltura, turismo</i>).\n"
        "Per toglierne una scrivila con il meno davanti; «nessuna» le toglie tutte.\n"
        "Ora: {current}\n/annulla per lasciar perdere.",
        "Send me the <b>exclusions</b> (words that make a call unsuitable), separated by commas "
        "(e.g. <i>agriculture, tourism</i>).\n"
        "To remove one, put a minus in front; “none” removes them all.\n"
        "Now: {current}\n/annulla to leave it.",
    ),
    "profile.ask.budget": (
        "Scrivimi la <b>dotazione minima</b> in euro dei bandi che ti interessano (es. 50000); "
        "0 per nessun minimo.\nOra: {current}\n/annulla per lasciar perdere.",
        "Send me the <b>minimum budget</b> in euros of the calls you care about (e.g. 50000); "
        "0 for no minimum.\nNow: {current}\n/annulla to leave it.",
    ),
    "profile.btn.keywords": ("✏️ Parole chiave", "✏️ Keywords"),
    "profile.btn.exclude": ("🚫 Esclusioni", "🚫 Exclusions"),
    "profile.btn.budget": ("💶 Dotazione minima", "💶 Minimum budget"),
    "profile.saved": ("Profilo aggiornato.", "Profile updated."),
    "profile.cancelled": ("Va bene, nessuna modifica.", "All right, nothing changed."),
    "profile.nothing_pending": ("Non c'è nulla da annullare.", "There is nothing to cancel."),
    "profile.err.too_many": (
        "Troppe voci: al massimo {max}, ne risulterebbero {count}. Nessuna modifica.",
        "Too many entries: at most {max}, this would make {count}. Nothing changed.",
    ),
    "profile.err.length": (
        "«{item}»: ogni voce deve avere da {min} a {max} caratteri. Nessuna modifica.",
        "“{item}”: each entry must have {min} to {max} characters. Nothing changed.",
    ),
    "profile.err.chars": (
        "«{item}» contiene caratteri non ammessi. Nessuna modifica.",
        "“{item}” contains characters that are not allowed. Nothing changed.",
    ),
    "profile.err.message": (
        "Il messaggio è troppo lungo: al massimo {max} caratteri.",
        "The message is too long: at most {max} characters.",
    ),
    "profile.err.budget": (
        "Non capisco «{value}»: scrivi un numero intero di euro, per esempio 50000 (0 = nessun minimo).",
        "I do not understand “{value}”: send a whole number of euros, e.g. 50000 (0 = no minimum).",
    ),
    "profile.err.unknown": (
        "Valore sconosciuto: «{value}». Usa i pulsanti del profilo.",
        "Unknown value: “{value}”. Use the profile buttons.",
    ),
    "profile.err.invalid": (
        "Il profilo non è valido: {detail}. Nessuna modifica.",
        "The profile is not valid: {detail}. Nothing changed.",
    ),
    "profile.err.no_email": (
        "Non c'è un indirizzo e-mail registrato per te: chiedi allo staff di aggiungerlo.",
        "There is no e-mail address on file for you: ask the staff to add one.",
    ),
    "profile.toggled_on": ("Attivato: {label}", "On: {label}"),
    "profile.toggled_off": ("Disattivato: {label}", "Off: {label}"),
    "channel.telegram": ("Telegram", "Telegram"),
    "channel.email": ("E-mail", "E-mail"),
    "alert.new": ("Nuovi bandi", "New calls"),
    "alert.changes": ("Modifiche (scadenze spostate, riaperture)", "Changes (deadlines moved, reopenings)"),
    "alert.reminders": ("Promemoria delle scadenze", "Deadline reminders"),
    "alert.partners": (
        "🤝 Ricerche partner (proposte di collaborazione EEN)",
        "🤝 Partner searches (EEN collaboration proposals)",
    ),
    "lang.it": ("🇮🇹 Italiano", "🇮🇹 Italiano"),
    "lang.en": ("🇬🇧 English", "🇬🇧 English"),
    "star": ("⭐ {n}", "⭐ {n}"),
    # --- the command menu Telegram shows ------------------------------------------------------
    "menu.bandi": ("Bandi aperti adatti a te", "Open calls that fit you"),
    "menu.cerca": ("Cerca tra i bandi aperti", "Search the open calls"),
    "menu.scadenze": ("I tuoi promemoria", "Your reminders"),
    "menu.profilo": ("Vedi e modifica il profilo", "See and edit your profile"),
    "menu.pausa": ("Sospendi gli avvisi", "Pause alerts"),
    "menu.riprendi": ("Riprendi gli avvisi", "Resume alerts"),
    "menu.lingua": ("Italiano o inglese", "Italian or English"),
    "menu.aiuto": ("Tutti i comandi", "All commands"),
    "menu.cancellami": ("Cancella i tuoi dati", "Delete your data"),
    "menu.calendario": ("Le scadenze nel tuo calendario", "Deadlines in your calendar"),
    # --- web board and calendar --------------------------------------------------------------
    "web.unavailable": (
        "La bacheca web non è attiva su questa installazione.",
        "The web board is not enabled on this installation.",
    ),
    "web.no_member": (
        "Per entrare nella bacheca serve un profilo da socio dello staff: chiedi un invito /invita staff.",
        "The web board needs a staff member account: ask for an invitation (/invita staff).",
    ),
    "web.link": (
        "Il tuo link per la bacheca, valido fino a {expires} e per un solo accesso:\n{link}\n\n"
        "Non inoltrarlo: chi lo apre entra al tuo posto.",
        "Your link to the board, valid until {expires} and for one sign-in:\n{link}\n\n"
        "Do not forward it: whoever opens it signs in as you.",
    ),
    "web.too_many": (
        "Hai chiesto troppi link nell'ultima ora. Riprova più tardi.",
        "You asked for too many links in the last hour. Try again later.",
    ),
    "calendario.link": (
        "Il tuo calendario delle scadenze: aggiungilo come calendario «da URL» (Outlook: «Iscriviti dal "
        "Web»; Google Calendar: «Da URL»).\n{link}\n\n"
        "Contiene le scadenze dei bandi che ti abbiamo segnalato e si aggiorna da solo; "
        "«Non per noi» toglie il bando. Il link è personale: se l'hai condiviso per sbaglio, "
        "/calendario nuovo ne crea un altro e disattiva questo.",
        "Your deadline calendar: add it as a calendar “from URL” (Outlook: “Subscribe from web”; "
        "Google Calendar: “From URL”).\n{link}\n\n"
        "It holds the deadlines of the calls we alerted you to and updates itself; "
        "“Not for us” removes the call. The link is personal: if you shared it by mistake, "
        "/calendario nuovo makes a new one and turns this one off.",
    ),
    "calendario.rotated": (
        "Nuovo link creato: quello di prima non funziona più. Aggiorna il calendario con questo:\n{link}",
        "New link made: the previous one no longer works. Update your calendar with this one:\n{link}",
    ),
    "calendario.usage": (
        "Uso: /calendario per il tuo link, /calendario nuovo per sostituirlo.",
        "Usage: /calendario for your link, /calendario nuovo to replace it.",
    ),
    # --- staff -------------------------------------------------------------------------------
    "staff.refused": (
        "Questo comando è riservato allo staff del cluster.",
        "This command is for the cluster staff only.",
    ),
    "digest.usage": (
        "Uso: /digest on oppure /digest off. Ora il riepilogo su Telegram è {state}.",
        "Usage: /digest on or /digest off. The Telegram digest is now {state}.",
    ),
    "digest.state_on": ("attivo", "on"),
    "digest.state_off": ("spento", "off"),
    "digest.on": (
        "Riceverai il riepilogo quotidiano anche qui su Telegram.",
        "You will get the daily digest here on Telegram too.",
    ),
    "digest.off": (
        "Non riceverai più il riepilogo quotidiano su Telegram.",
        "You will no longer get the daily digest on Telegram.",
    ),
    "digest.no_member": (
        "Questa chat di amministrazione non è collegata a un socio: il riepilogo va a un socio "
        "dello staff. Registra la chat con un invito staff (/invita staff).",
        "This admin chat is not linked to a member: the digest goes to a staff member. "
        "Register the chat with a staff invitation (/invita staff).",
    ),
    # --- admin -------------------------------------------------------------------------------
    "admin.refused": (
        "Mi dispiace, questo comando è riservato agli amministratori di Sentinella.",
        "Sorry, this command is for Sentinella's administrators only.",
    ),
    "crawl.usage": (
        "Uso: /crawl oppure /crawl FONTE ({sources}).",
        "Usage: /crawl or /crawl SOURCE ({sources}).",
    ),
    "crawl.unknown_source": (
        "Fonte sconosciuta: «{source}». Fonti disponibili: {sources}.",
        "Unknown source: “{source}”. Available sources: {sources}.",
    ),
    "crawl.started": (
        "Raccolta avviata: {sources}. Ti scrivo il riepilogo quando finisce.",
        "Crawl started: {sources}. I will send the summary when it ends.",
    ),
    "crawl.busy": (
        "Una raccolta di {sources} è già in corso: aspetta che finisca.",
        "A crawl of {sources} is already running: wait for it to end.",
    ),
    "crawl.unavailable": (
        "La raccolta non si può avviare da qui: il servizio di raccolta non è attivo in questo processo.",
        "Crawling cannot be started from here: the crawl service is not running in this process.",
    ),
    "crawl.failed": (
        "La raccolta di {sources} non è riuscita ({error}). I dettagli sono nel log.",
        "The crawl of {sources} failed ({error}). Details are in the log.",
    ),
    "crawl.done": ("<b>Raccolta finita</b> — {sources}", "<b>Crawl finished</b> — {sources}"),
    "crawl.line": (
        "{name}: <b>{outcome}</b> — {new} nuovi, {changed} modificati, {unchanged} invariati, "
        "{errors} errori, {requests} richieste, {seconds} s",
        "{name}: <b>{outcome}</b> — {new} new, {changed} changed, {unchanged} unchanged, "
        "{errors} errors, {requests} requests, {seconds} s",
    ),
    "crawl.none": ("Nessuna fonte raccolta.", "No source was crawled."),
    "stato.title": ("<b>Stato di Sentinella</b>", "<b>Sentinella status</b>"),
    "stato.sources": ("<b>Fonti</b>", "<b>Sources</b>"),
    "stato.no_sources": ("nessuna raccolta ancora", "no crawl yet"),
    "stato.source": (
        "{flag} {name}: {outcome}, ultima raccolta {last_run}, ultimo successo {last_success}, "
        "{yield_} bandi, {failures} errori di fila",
        "{flag} {name}: {outcome}, last run {last_run}, last success {last_success}, "
        "{yield_} calls, {failures} failures in a row",
    ),
    "stato.never": ("mai", "never"),
    "stato.outbox": (
        "<b>Coda degli invii</b>: {pending} in attesa, {sending} in invio, {failed} da ritentare, "
        "{dead} falliti, {sent} inviati",
        "<b>Delivery queue</b>: {pending} pending, {sending} sending, {failed} to retry, "
        "{dead} dead, {sent} sent",
    ),
    "stato.digest": ("<b>Ultimo riepilogo</b>: {when}", "<b>Last digest</b>: {when}"),
    "stato.digest_none": ("<b>Ultimo riepilogo</b>: nessuno", "<b>Last digest</b>: none yet"),
    "stato.daemon": ("<b>Servizio</b>", "<b>Service</b>"),
    "invita.usage": (
        "Uso: /invita oppure /invita member|staff|admin (predefinito: member).",
        "Usage: /invita or /invita member|staff|admin (default: member).",
    ),
    "invita.done": (
        "Invito <b>{role}</b> creato, valido fino al {expires}. Mandalo a una sola persona:\n{link}\n"
        "Il codice vale una volta sola.",
        "<b>{role}</b> invitation made, valid until {expires}. Send it to one person only:\n{link}\n"
        "The code works once.",
    ),
    "membri.header": ("<b>Soci</b> — {total}", "<b>Members</b> — {total}"),
    "membri.none": ("Nessun socio registrato.", "No members yet."),
    "membri.line": (
        "#{id} {name}{organisation} — {role}{flags}",
        "#{id} {name}{organisation} — {role}{flags}",
    ),
    "membri.more": ("…e altri {more}.", "…and {more} more."),
    "flag.no_chat": ("senza Telegram", "no Telegram"),
    "flag.blocked": ("bot bloccato", "bot blocked"),
    "flag.paused": ("in pausa", "paused"),
    "flag.inactive": ("disattivato", "disabled"),
    "flag.digest": ("riepilogo", "digest"),
}


def t(lang: str, key: str, /, **values: object) -> str:
    """The text ``key`` in ``lang`` (Italian if unknown) with its placeholders filled and escaped."""
    pair = TEXTS[key]
    template = pair[1] if normalise_language(lang) == "en" else pair[0]
    if not values:
        return template
    return template.format(**{name: esc(value) for name, value in values.items()})


def placeholders(template: str) -> set[str]:
    """The placeholder names of a template (the tests check both languages use the same)."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}
