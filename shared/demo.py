"""Demo data for `make run`: a resident, a volunteer and a staff member per community."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from shared.config import CommunitiesConfig
from shared.db.models import Volunteer
from shared.domain.tasks import DAYS, PARTS
from shared.repo.communities import sync_communities
from shared.repo.users import get_or_create_user, give_consent, grant_role

_NAMES = {
    "cjx": ("王阿姨", "小李", "毛大姐"),
    "zjy": ("张大爷", "小赵", "刘主任"),
    "nsm": ("马奶奶", "小马", "杨书记"),
    "yjy": ("陈叔叔", "小陈", "街长老周"),
    "zjz": ("孙阿姨", "小孙", "何社工"),
}


@dataclass(frozen=True)
class DemoPerson:
    telegram_id: int
    name: str
    role: str          # resident | volunteer | staff
    community: str


def demo_people(config: CommunitiesConfig) -> list[DemoPerson]:
    people = []
    for index, community in enumerate(config.communities, start=1):
        names = _NAMES.get(community.code, ("居民", "志愿者", "工作人员"))
        for offset, role in enumerate(("resident", "volunteer", "staff")):
            people.append(DemoPerson(100000 + index * 10 + offset + 1, names[offset], role, community.code))
    return people


async def load_demo(session: AsyncSession, config: CommunitiesConfig) -> list[DemoPerson]:
    """Idempotent: safe to run at every start."""
    await sync_communities(session, config)
    people = demo_people(config)
    for person in people:
        user = await get_or_create_user(session, "telegram", str(person.telegram_id), display_name=person.name)
        if person.role != "resident":
            # Residents start fresh so `/start` shows the consent flow in the demo.
            give_consent(user)
            user.community_code = person.community
            grant_role(user, person.role)
        if person.role == "volunteer" and await session.get(Volunteer, user.id) is None:
            # An approved volunteer who can do anything at any time, so demo tasks reach someone.
            session.add(Volunteer(user_id=user.id, name=person.name, community_code=person.community,
                                  skills=[s.code for s in config.defaults.volunteer_skills], days=list(DAYS),
                                  parts=list(PARTS), named_in_recognition=True, status="approved"))
    from shared.activities import sync_configured

    await sync_configured(session, config)   # the activities of config/communities.yaml, ready to browse
    await session.commit()
    return people
