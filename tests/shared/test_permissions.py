from shared.domain.permissions import community_is_fixed, is_owner, is_private_category, is_staff_of


def test_staff_only_in_their_community_admin_everywhere():
    assert is_staff_of(["staff"], "zjy", "zjy")
    assert not is_staff_of(["staff"], "zjy", "cjx")
    assert not is_staff_of(["volunteer"], "zjy", "zjy")
    assert not is_staff_of([], "zjy", "zjy")
    assert is_staff_of(["admin"], None, "cjx")


def test_owner_and_privacy():
    assert is_owner(3, 3) and not is_owner(3, 4) and not is_owner(3, None)
    assert is_private_category("legal_aid") and is_private_category("mediation")
    assert not is_private_category("repair") and not is_private_category(None)


def test_only_an_administrator_moves_staff_to_another_community():
    assert community_is_fixed(["staff"], "zjy")
    assert community_is_fixed(["volunteer", "staff"], "zjy")
    assert not community_is_fixed(["staff"], None)        # first choice, during onboarding
    assert not community_is_fixed(["staff", "admin"], "zjy")
    assert not community_is_fixed(["volunteer"], "zjy")
    assert not community_is_fixed([], "zjy") and not community_is_fixed(None, "zjy")
