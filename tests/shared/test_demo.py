from sqlalchemy import func, select

from shared.db.models import User, Volunteer
from shared.demo import demo_people, load_demo


async def test_demo_data_is_complete_and_idempotent(db, config):
    async with db.sessions() as session:
        await load_demo(session, config)
        await load_demo(session, config)
        users = await session.scalar(select(func.count()).select_from(User))
        volunteers = list(await session.scalars(select(Volunteer)))
    assert users == len(demo_people(config)) == 15
    assert len(volunteers) == 5 and all(v.status == "approved" for v in volunteers)
    assert {v.community_code for v in volunteers} == set(config.codes)
