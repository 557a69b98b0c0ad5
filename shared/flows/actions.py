"""Action strings carried by buttons (Telegram callback data, Matrix option ids).

Format `verb:arg:arg`, at most 64 bytes. Anything can arrive here — a forged
callback included — so `parse` accepts only known verbs with the right number
of well-formed arguments; the flow then checks role, ownership and state.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_BYTES = 64
_ARG = re.compile(r"^[A-Za-z0-9_\-]{1,32}$")

# verb → number of arguments
VERBS: dict[str, int] = {
    "consent": 1,   # consent:yes | consent:no
    "comm": 1,      # comm:<community code>
    "lang": 1,      # lang:zh | lang:en
    "menu": 1,      # menu:report | menu:requests | menu:language | menu:help
    "cat": 2,       # cat:<request id>:<label>  (resident picks a category)
    "req": 1,       # req:<request id>          (resident opens one of their requests)
    "add": 1,       # add:<request id>          (resident adds information)
    "wd": 1,        # wd:<request id>           (resident asks to withdraw)
    "wdy": 1,       # wdy:<request id>          (resident confirms the withdrawal)
    "ans": 1,       # ans:<request id>          (resident answers a staff reply)
    "fu": 2,        # fu:<request id>:yes|no    (follow-up: solved?)
    "rate": 2,      # rate:<request id>:<1-5>
    "st": 2,        # st:<op>:<request id>      (staff: view, take, reply, cat, move, res)
    "stc": 2,       # stc:<request id>:<label>  (staff sets the category)
    "stm": 2,       # stm:<request id>:<code>   (staff moves the request to a community)
    "stf": 2,       # stf:<request id>:<body>   (staff refers the request to an outside body)
    "dup": 2,       # dup:<new id>:<existing id> (resident follows the existing request instead)
    "ann": 1,       # ann:yes|no                (staff confirms an announcement)
    "vr": 1,        # vr:start                  (start volunteer registration)
    "vs": 1,        # vs:<skill>|done           (toggle a skill)
    "va": 1,        # va:<day>|<part>|done      (toggle availability)
    "vp": 1,        # vp:skip                   (no phone)
    "vn": 1,        # vn:yes|no                 (named in recognition?)
    "vol": 2,       # vol:ok|no:<user id>       (staff decide a registration)
    "tk": 2,        # tk:<op>:<task id>         (claim, start, done, rel, ok, adj)
    "stk": 2,       # stk:<request id>:<skill>  (staff create a task from a request)
    "nts": 1,       # nts:<skill>               (staff /task: the skill)
    "ntw": 1,       # ntw:<window code>         (staff /task: the time window)
    "fm": 1,        # fm:yes|no                 (/forgetme confirmation)
    "fr": 2,        # fr:<op>:<fridge code>     (menu, stock, give, sub, unsub, recv, manage, check)
    "fq": 1,        # fq:<n>                    (donation: quantity)
    "fk": 1,        # fk:<kind>                 (donation: kind of food)
    "fb": 1,        # fb:today|tomorrow|d3|pick (donation: best-before)
    "fh": 1,        # fh:yes|no                 (donation: hygiene rules accepted)
    "fs": 1,        # fs:<YYYYMMDDHHMM UTC>     (donation: drop-off slot)
    "fi": 2,        # fi:<op>:<item id>         (ok, no, take, gone, rm, cancel)
    "frr": 2,       # frr:<item id>:<reason>    (refuse a donation with a reason)
    "fc": 2,        # fc:clean|expired:yes|no   (shift checklist)
    "bk": 1,        # bk:menu|list|search|mine|points|wishes|stock|green|seed  (book exchange)
    "bkc": 1,       # bkc:<condition>           (listing: the book's condition)
    "bkph": 1,      # bkph:skip                 (listing: no photo)
    "bkl": 1,       # bkl:house|owner           (listing: where the book is kept)
    "bkp": 1,       # bkp:<page>                (search results page)
    "bko": 1,       # bko:<book id>             (open a book)
    "bkr": 1,       # bkr:<book id>             (request a book)
    "bkt": 2,       # bkt:<hold id>:<yyyymmdd>  (pick the handover day)
    "bkx": 1,       # bkx:<hold id>             (give up a hold or a place in the queue)
    "bkh": 2,       # bkh:ok:<hold id>          (the holder confirms the handover)
    "bkw": 1,       # bkw:save                  (save the current search as a wish)
    "bkwd": 1,      # bkwd:<wish id>            (remove a wish)
    "md": 2,        # md:<op>:<case id>         (mediators: view, join, lead, party, pinv, prec, sess, note, notes, agree, esc, legal, close)
    "mdo": 1,       # mdo:<request id>          (a mediator opens a case from a mediation request)
    "mdl": 1,       # mdl:mine|stats            (case list, statistics)
    "mdy": 2,       # mdy:<party id>:yes|no     (a party consents to take part)
    "mdv": 1,       # mdv:<party id>            (a party views their case)
    "mdm": 1,       # mdm:<party id>            (a party writes privately to the mediators)
    "mdss": 2,      # mdss:held|cancel|att:<session id>
    "mda": 3,       # mda:<session id>:<party id>:y|n   (attendance)
    "mdk": 3,       # mdk:<agreement id>:<party id>:yes|no  (accept the agreement)
    "mdf": 3,       # mdf:<agreement id>:<party id>:yes|no  (follow-up: does it hold?)
    "dl": 2,        # dl:<op>:<topic id>        (deliberation: view, tl, cm, sup, com, acc, req, meet, vote, act, close)
    "dlm": 1,       # dlm:list|new|board        (deliberation menu)
    "dls": 1,       # dls:all|<compound index>  (proposal: whole community or a compound)
    "dlp": 1,       # dlp:skip|done             (proposal: no more photos)
    "dlc": 1,       # dlc:<compound index>      (resident declares their compound)
    "dlf": 2,       # dlf:<request id>:all|<compound index>  (staff: a deliberation request becomes a topic)
    "dlo": 1,       # dlo:secret|open           (vote: secret or open)
    "dlw": 1,       # dlw:compound|community    (vote: who may vote, for a compound topic)
    "dlq": 1,       # dlq:<n>                   (vote: quorum)
    "dlt": 1,       # dlt:<hours>               (vote: how long it stays open)
    "dlv": 2,       # dlv:<vote id>:<option>    (cast or change a ballot)
    "dlh": 2,       # dlh:<comment id>:<reason> (staff hide a comment)
    "dla": 2,       # dla:prog|done|task|req:<action id>
    "dlk": 2,       # dlk:<action id>:<skill>   (an action becomes a volunteer task)
    "dlx": 2,       # dlx:<action id>:<label>   (an action becomes a request for a team)
    "dlr": 2,       # dlr:<topic id>:<1-5>      (rate the outcome)
    "ac": 1,        # ac:menu|children|seniors|all|mine|manage|new|stats  (activities)
    "aco": 1,       # aco:<activity id>         (open an activity)
    "ace": 2,       # ace:<activity id>:self|new|<child id>  (enrol)
    "acx": 1,       # acx:<enrolment id>        (give up a place or a place in line)
    "acy": 2,       # acy:<enrolment id>:yes|no (answer an offered place)
    "acc": 1,       # acc:skip|yes|no           (child form: no class / guardian consent)
    "acn": 1,       # acn:<audience>|free|save  (staff: new activity)
    "acg": 2,       # acg:<op>:<activity id>    (organiser: view, sessions, people, stats, org, cancel, cancely)
    "acv": 2,       # acv:<activity id>:<user id>  (staff: a volunteer organises the activity)
    "acs": 2,       # acs:roll|done|cancel:<session id>  (organiser: roll call, finish it, cancel the session)
    "acm": 3,       # acm:<session id>:<enrolment id>:1|0  (organiser: present or not)
    "acp": 2,       # acp:<session id>:<enrolment id>  (organiser: who collected the child)
    "bkg": 2,       # bkg:<seedling id>:<count> (以书换绿: points for seedlings on a swap day)
}


@dataclass(frozen=True)
class Action:
    verb: str
    args: tuple[str, ...]


def make(verb: str, *args: object) -> str:
    if verb not in VERBS or len(args) != VERBS[verb]:
        raise ValueError(f"bad action {verb}{args}")
    text = ":".join([verb, *(str(a) for a in args)])
    if len(text.encode()) > MAX_BYTES or not all(_ARG.match(str(a)) for a in args):
        raise ValueError(f"action too long or malformed: {text!r}")
    return text


def parse(data: str | None) -> Action | None:
    if not data or len(data.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        return None
    verb, *args = data.split(":")
    if VERBS.get(verb) != len(args) or not all(_ARG.match(a) for a in args):
        return None
    return Action(verb, tuple(args))
