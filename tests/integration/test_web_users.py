"""The Users page in a real browser against a real `camsight run`.

An admin adds a user with one camera (the one-time password is shown once), the user signs in
with it and chooses their own; the admin resets the password (a new one-time password, the
user's session ends), revokes one of the user's API tokens, disables the user (sign-in refused,
the other token refused), enables them, revokes all their tokens, changes role and cameras and
deletes them; every step is in the audit log. The page is checked on a phone-size screen too.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.browser import browser
from tests.integration.test_web_browser import no_sideways_scroll, shot, watch_for_problems
from tests.servers import camsight_web

pytestmark = [pytest.mark.slow]

FIRST_PASSWORD = "correct horse battery"
ADMIN_PASSWORD = "a much better passphrase"
GUS_PASSWORD = "gus chose this passphrase"
GUS_PASSWORD_2 = "gus chose another passphrase"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 860}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    work = tmp_path_factory.mktemp("web-users")
    config = work / "site.yaml"
    # Cameras with no stream: nothing to analyse, but names the users can be given.
    config.write_text("cameras:\n  gate: {}\n  lobby: {}\n")
    args = ("--config", str(config), "--data", str(work / "data"))
    with camsight_web(*args, env={"CAMSIGHT_ADMIN_PASSWORD": FIRST_PASSWORD}) as url:
        yield url


def sign_in(page, base: str, name: str, password: str, new_password: str | None = None) -> None:
    """Sign in; with ``new_password``, the forced change of a one-time password follows."""
    from playwright.sync_api import expect

    page.goto(base)
    page.fill("#sign-in input[name=name]", name)
    page.fill("#sign-in input[name=password]", password)
    page.click("#sign-in button[type=submit]")
    if new_password is None:
        return
    expect(page.locator("#password-change")).to_be_visible()
    current = page.locator("#password-change input[name=current]")
    if current.count():  # the form may already know the one-time password just typed
        current.fill(password)
    page.fill("#password-change input[name=new]", new_password)
    page.fill("#password-change input[name=again]", new_password)
    page.click("#password-change button[type=submit]")
    expect(page.locator("#password-change")).to_have_count(0)


def token_works(base: str, secret: str) -> bool:
    r = httpx.get(f"{base}/api/v1/auth/me", headers={"Authorization": f"Bearer {secret}"}, timeout=30)
    assert r.status_code in (200, 401), r.text
    return r.status_code == 200


def one_time_password(page) -> str:
    from playwright.sync_api import expect

    expect(page.locator("#one-time-password")).to_be_visible()
    return page.locator("#one-time-password").inner_text().strip()


def test_admin_manages_a_user_from_the_users_page(server: str) -> None:
    from playwright.sync_api import expect

    with browser() as chromium:
        admin_ctx = chromium.new_context(viewport=DESKTOP)
        admin = admin_ctx.new_page()
        problems = watch_for_problems(admin)
        admin.set_default_timeout(20_000)
        admin.on("dialog", lambda dialog: dialog.accept())
        sign_in(admin, server, "admin", FIRST_PASSWORD, ADMIN_PASSWORD)
        admin.click("nav a[data-page=users]")
        expect(admin.locator("h1")).to_have_text("Users")
        own = admin.locator('.user-card[data-user="admin"]')
        expect(own).to_contain_text("(you)")
        # An admin cannot lock themselves out from here.
        for action in (".reset-password", ".toggle-disabled", ".delete-user"):
            expect(own.locator(action)).to_have_count(0)

        # Add gus, a viewer of the lobby only; the one-time password is shown once.
        form = admin.locator("#add-user")
        form.locator("input[name=name]").fill("gus")
        form.locator("select[name=role]").select_option("viewer")
        form.locator("input[name=all-cameras]").uncheck()
        form.locator("input[name=camera][value=lobby]").check()
        form.locator("button[type=submit]").click()
        first = one_time_password(admin)
        # The form is ready for the next user, with the least access again.
        expect(form.locator("select[name=role]")).to_have_value("viewer")
        expect(form.locator("input[name=all-cameras]")).to_be_checked()
        admin.click(".secret-box button.link")  # Done: the password leaves the screen
        expect(admin.locator("#one-time-password")).to_have_count(0)
        card = admin.locator('.user-card[data-user="gus"]')
        expect(card).to_contain_text("Cameras: lobby")
        expect(card.locator(".user-state")).to_have_text("must change password")
        shot(admin, "users-added")
        listed = admin.request.get(f"{server}/api/v1/users").json()["items"]
        assert [u["cameras"] for u in listed if u["name"] == "gus"] == [["lobby"]]
        assert first not in admin.request.get(f"{server}/api/v1/users").text()

        # gus signs in with it and chooses his own password.
        gus_ctx = chromium.new_context(viewport=PHONE)
        gus = gus_ctx.new_page()
        gus.set_default_timeout(20_000)
        sign_in(gus, server, "gus", first, GUS_PASSWORD)
        expect(gus.locator("#who-name")).to_contain_text("gus (viewer)")

        tokens = [
            admin.request.post(f"{server}/api/v1/tokens", data={"name": f"screen-{i}", "user": "gus"}).json()
            for i in (1, 2)
        ]
        assert all(token_works(server, t["secret"]) for t in tokens)

        # A reset: a new one-time password; gus's session ends at once.
        card.locator(".reset-password").click()
        second = one_time_password(admin)
        assert second != first
        admin.click(".secret-box button.link")  # Done: the password leaves the screen
        expect(admin.locator("#one-time-password")).to_have_count(0)
        gus.reload()
        expect(gus.locator("#sign-in")).to_be_visible()
        sign_in(gus, server, "gus", second, GUS_PASSWORD_2)

        # One token revoked from the page; the other still works.
        card.locator(".show-tokens").click()
        first_token = card.locator(f'.token-list li[data-token="{tokens[0]["token"]["id"]}"]')
        expect(card.locator(".token-list li")).to_have_count(2)
        first_token.locator(".revoke-token").click()
        expect(card.locator(".token-list li")).to_have_count(1)
        assert not token_works(server, tokens[0]["secret"])
        assert token_works(server, tokens[1]["secret"])

        # Disabled: signed out, sign-in refused, the remaining token refused.
        card.locator(".toggle-disabled").click()
        expect(card.locator(".user-state")).to_have_text("disabled")
        assert not token_works(server, tokens[1]["secret"])
        gus.reload()
        expect(gus.locator("#sign-in")).to_be_visible()
        sign_in(gus, server, "gus", GUS_PASSWORD_2)
        expect(gus.locator("#sign-in [role=alert]")).to_contain_text("wrong user name or password")

        # Enabled again, then every token revoked at once.
        card.locator(".toggle-disabled").click()
        expect(card.locator(".user-state")).to_have_text("active")
        assert token_works(server, tokens[1]["secret"])
        admin.request.post(f"{server}/api/v1/tokens", data={"name": "screen-3", "user": "gus"})
        card.locator(".show-tokens").click()
        expect(card.locator(".token-list li")).to_have_count(2)
        card.locator(".revoke-all").click()
        expect(card.locator(".user-panel")).to_contain_text("No active API tokens.")
        assert not token_works(server, tokens[1]["secret"])

        # Role and cameras.
        card.locator(".edit-user").click()
        edit = card.locator(".edit-user-form")
        edit.locator("select[name=role]").select_option("operator")
        edit.locator("input[name=camera][value=gate]").check()
        edit.locator("button[type=submit]").click()
        expect(card).to_contain_text("Cameras: gate, lobby")
        expect(card.locator(".role")).to_have_text("operator")

        # The phone-size page: nothing runs off the side, with a panel open too.
        phone_ctx = chromium.new_context(viewport=PHONE, storage_state=admin_ctx.storage_state())
        phone = phone_ctx.new_page()
        phone.goto(f"{server}/#/users")
        phone_card = phone.locator('.user-card[data-user="gus"]')
        phone_card.locator(".show-tokens").click()
        expect(phone_card.locator(".user-panel")).to_contain_text("API tokens of gus")
        assert no_sideways_scroll(phone), "the Users page scrolls sideways on a phone"
        phone_card.locator(".edit-user").click()
        expect(phone_card.locator(".edit-user-form")).to_be_visible()
        assert no_sideways_scroll(phone), "the user editor scrolls sideways on a phone"
        shot(phone, "users-phone")
        phone_ctx.close()

        # Deleted.
        card.locator(".delete-user").click()
        expect(admin.locator('.user-card[data-user="gus"]')).to_have_count(0)
        assert not problems, problems

        # Every step is in the audit log, by the admin, none with a password in it.
        audit = admin.request.get(f"{server}/api/v1/audit", params={"limit": 500}).json()["items"]
        mine = [
            (e["action"], e["detail"])
            for e in reversed(audit)
            if e["target"] == "gus" and e["actor"] == "admin"
        ]
        actions = [a for a, _ in mine]
        assert actions[0] == "user.create" and actions[-1] == "user.delete"
        assert ("user.password", True) in [(a, d.get("generated")) for a, d in mine]  # the reset
        changes = [d["changes"] for a, d in mine if a == "user.update"]
        assert {"disabled": [False, True]} in changes and {"disabled": [True, False]} in changes
        assert any("role" in c and "cameras" in c for c in changes)
        revokes = [d for a, d in mine if a == "token.revoke"]
        assert revokes[0]["token_id"] == tokens[0]["token"]["id"]
        assert revokes[1]["all"] is True and revokes[1]["count"] == 2
        assert actions.count("token.create") == 3
        text = str(audit)
        assert first not in text and second not in text and GUS_PASSWORD not in text
        admin_ctx.close()
        gus_ctx.close()
