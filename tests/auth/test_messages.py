"""The message templates: every placeholder filled, values escaped in HTML."""

from __future__ import annotations

from auth.messages import MailComposer, render
from auth.settings import AuthSettings


def test_render_escapes_values_in_html_only() -> None:
    text, html = render(
        "email_change_notice",
        {"app": "x", "email": "a@x.com", "new_email": '<script>"x"</script>@evil.com'},
    )
    assert '<script>"x"</script>@evil.com' in text
    assert "<script>" not in html
    assert "&lt;script&gt;&quot;x&quot;&lt;/script&gt;@evil.com" in html


def test_links_carry_the_token_under_app_url() -> None:
    composer = MailComposer(AuthSettings(app_url="https://app.example.com/base/"))
    mail = composer.password_reset("a@x.com", "tok_en-123")
    assert "https://app.example.com/base/reset-password?token=tok_en-123" in mail.text
    assert 'href="https://app.example.com/base/reset-password?token=tok_en-123"' in mail.html
    assert "1 hour" in mail.text
    assert mail.recipient == "a@x.com"
    for build in (composer.verification, composer.email_change):
        rendered = build("a@x.com", "t")
        assert "$" not in rendered.text + rendered.html
