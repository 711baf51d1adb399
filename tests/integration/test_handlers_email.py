"""send_email, run in-process against the real database: a message in the file backend's
directory or on a local SMTP server, and its failures sorted into permanent and retryable."""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest

from jobs.types import HandlerError
from tests.harness import PORT_BASE, free_port
from tests.integration.inprocess import messages, run

pytestmark = pytest.mark.django_db

FILE_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
#: Where this module's local SMTP servers and its closed port are looked for: 18500 by default,
#: and moved with ``DRACONIC_TEST_PORT_BASE`` like every port of a run, so that two runs on one
#: machine do not find each other's server (or take each other's closed port).
SMTP_PORT_BASE = PORT_BASE + 350


@pytest.fixture
def mail_dir(settings: Any, tmp_path: Path) -> Path:
    settings.EMAIL_BACKEND = FILE_BACKEND
    settings.EMAIL_FILE_PATH = str(tmp_path / "mail")
    return tmp_path / "mail"


def sent_messages(directory: Path) -> list[Any]:
    return [
        message_from_bytes(path.read_bytes(), policy=policy.default)
        for path in sorted(directory.glob("*.log"))
    ]


def test_send_email_writes_the_message_through_the_file_backend(job_factory, mail_dir):
    job = job_factory(
        type="send_email",
        payload={
            "to": ["ann@example.com", "ben@example.org"],
            "cc": "carol@example.net",
            "bcc": ["dave@example.com"],
            "from_email": "reports@example.com",
            "subject": "Quarterly numbers",
            "body": "Plain text body.",
            "html_body": "<p>HTML body.</p>",
        },
    )
    result = run(job)

    assert result["recipients"] == 4
    assert result["message_id"].startswith(f"<job-{job.id}@")
    assert result["backend"] == FILE_BACKEND
    [sent] = sent_messages(mail_dir)
    assert sent["Subject"] == "Quarterly numbers"
    assert sent["From"] == "reports@example.com"
    assert sent["To"] == "ann@example.com, ben@example.org"
    assert sent["Cc"] == "carol@example.net"
    assert sent["Bcc"] is None  # never in the headers
    assert sent["Message-ID"] == result["message_id"]
    assert sent.get_body(("plain",)).get_content().strip() == "Plain text body."
    assert sent.get_body(("html",)).get_content().strip() == "<p>HTML body.</p>"
    assert messages(job) == ["sending email", "email sent"]


def test_send_email_uses_the_default_sender_and_accepts_a_single_address(
    job_factory, mail_dir, settings
):
    settings.DEFAULT_FROM_EMAIL = "platform@example.com"
    job = job_factory(
        type="send_email", payload={"to": "ann@example.com", "subject": "Hi", "body": "x"}
    )

    assert run(job)["recipients"] == 1
    [sent] = sent_messages(mail_dir)
    assert sent["From"] == "platform@example.com"
    assert sent["To"] == "ann@example.com"


def test_send_email_refuses_an_invalid_stored_payload_permanently(job_factory, mail_dir):
    job = job_factory(
        type="send_email", payload={"to": "not-an-address", "subject": "x", "body": "y"}
    )

    with pytest.raises(HandlerError) as caught:
        run(job)
    assert caught.value.permanent
    assert not mail_dir.exists() or not list(mail_dir.iterdir())


class FakeSMTPServer(socketserver.ThreadingTCPServer):
    """A local SMTP server standing in for the outside world: it records what it accepts and
    answers with the codes a test sets."""

    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, port: int) -> None:
        super().__init__(("127.0.0.1", port), FakeSMTPSession)
        self.refuse: set[str] = set()
        self.auth_code = 535
        self.data_code = 250
        self.received: list[bytes] = []
        self.envelopes: list[list[str]] = []


class FakeSMTPSession(socketserver.StreamRequestHandler):
    server: FakeSMTPServer

    def reply(self, text: str) -> None:
        self.wfile.write(text.encode() + b"\r\n")

    def handle(self) -> None:
        self.reply("220 fake.example ESMTP")
        recipients: list[str] = []
        while line := self.rfile.readline():
            verb, _, arg = line.decode().strip().partition(" ")
            verb = verb.upper()
            if verb == "EHLO":
                self.reply("250-fake.example\r\n250-AUTH PLAIN\r\n250 8BITMIME")
            elif verb == "AUTH":
                self.reply(f"{self.server.auth_code} authentication result")
            elif verb == "RCPT":
                address = arg.split(":", 1)[1].strip("<> ")
                if address in self.server.refuse:
                    self.reply("550 5.1.1 no such user")
                else:
                    recipients.append(address)
                    self.reply("250 ok")
            elif verb == "DATA":
                self.reply("354 go ahead")
                self.server.received.append(self._read_data())
                self.server.envelopes.append(recipients)
                self.reply(f"{self.server.data_code} data result")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:  # MAIL, RSET, NOOP
                self.reply("250 ok")

    def _read_data(self) -> bytes:
        lines = []
        while (line := self.rfile.readline()) not in (b".\r\n", b""):
            lines.append(line)
        return b"".join(lines)


@pytest.fixture
def smtp_server(settings: Any) -> Iterator[FakeSMTPServer]:
    server = FakeSMTPServer(free_port(SMTP_PORT_BASE))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.EMAIL_BACKEND = SMTP_BACKEND
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = server.server_address[1]
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_TIMEOUT = 30
    yield server
    server.shutdown()
    server.server_close()


EMAIL = {"to": ["ann@example.com", "ben@example.com"], "subject": "Hello", "body": "Body text"}


def test_send_email_delivers_over_smtp(job_factory, smtp_server):
    job = job_factory(type="send_email", payload={**EMAIL, "bcc": "hidden@example.com"})

    result = run(job)

    assert result["recipients"] == 3
    assert smtp_server.envelopes == [["ann@example.com", "ben@example.com", "hidden@example.com"]]
    sent = message_from_bytes(smtp_server.received[0], policy=policy.default)
    assert sent["Subject"] == "Hello"
    assert sent["Message-ID"] == result["message_id"]
    assert "hidden@example.com" not in smtp_server.received[0].decode()


def test_send_email_treats_refused_recipients_as_permanent(job_factory, smtp_server):
    smtp_server.refuse = {"ann@example.com", "ben@example.com"}
    job = job_factory(type="send_email", payload=EMAIL)

    with pytest.raises(HandlerError) as caught:
        run(job)
    assert caught.value.permanent
    assert "ann@example.com" in str(caught.value)


def test_send_email_treats_a_rejected_login_as_permanent(job_factory, smtp_server, settings):
    settings.EMAIL_HOST_USER = "mailer"
    settings.EMAIL_HOST_PASSWORD = "wrong"
    job = job_factory(type="send_email", payload=EMAIL)

    with pytest.raises(HandlerError) as caught:
        run(job)
    assert caught.value.permanent
    assert "login" in str(caught.value)
    assert smtp_server.received == []


@pytest.mark.parametrize(("code", "permanent"), [(451, False), (554, True)])
def test_send_email_retries_a_transient_reply_but_not_a_final_one(
    job_factory, smtp_server, code, permanent
):
    smtp_server.data_code = code
    job = job_factory(type="send_email", payload=EMAIL)

    with pytest.raises(HandlerError) as caught:
        run(job)
    assert caught.value.permanent is permanent


def test_send_email_retries_when_the_server_is_unreachable(job_factory, settings):
    settings.EMAIL_BACKEND = SMTP_BACKEND
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_TIMEOUT = 30
    job = job_factory(type="send_email", payload=EMAIL)

    # Bound but not listening: connecting is refused, and no other process can start to
    # listen on the port meanwhile.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", free_port(SMTP_PORT_BASE)))
        settings.EMAIL_PORT = closed.getsockname()[1]
        with pytest.raises(HandlerError) as caught:
            run(job)
    assert caught.value.permanent is False
    assert "cannot reach the mail server" in str(caught.value)
