"""One helper turns KAFKA_SECURITY_PROTOCOL, SASL and TLS settings into every client's arguments."""

from __future__ import annotations

import ssl

import certifi
import pytest
from faststream.security import SASLScram512
from pydantic import ValidationError

from rhythm_shared.kit.kafka import broker_security, client_security
from rhythm_shared.kit.settings import KafkaSecuritySettings, ServiceSettings


def test_plaintext_is_the_default_and_needs_nothing() -> None:
    assert client_security(KafkaSecuritySettings()) == {"security_protocol": "PLAINTEXT"}
    assert broker_security(KafkaSecuritySettings()) is None


def test_sasl_settings_become_aiokafka_arguments_and_a_faststream_security() -> None:
    settings = KafkaSecuritySettings(
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_username="goals",
        kafka_sasl_password="s3cret",
    )
    assert client_security(settings) == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "goals",
        "sasl_plain_password": "s3cret",
    }
    security = broker_security(settings)
    assert isinstance(security, SASLScram512)
    assert (security.username, security.password, security.use_ssl) == ("goals", "s3cret", False)


def test_sasl_ssl_checks_the_broker_against_the_configured_ca() -> None:
    settings = KafkaSecuritySettings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-256",
        kafka_sasl_username="goals",
        kafka_sasl_password="s3cret",
        kafka_ssl_cafile=certifi.where(),
    )
    kwargs = client_security(settings)
    context = kwargs["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.get_ca_certs()  # the bundle was loaded
    security = broker_security(settings)
    assert security is not None
    assert security.use_ssl
    assert isinstance(security.ssl_context, ssl.SSLContext)


def test_the_cli_and_tools_read_the_same_variables_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "ops")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "pw")
    assert client_security()["sasl_plain_username"] == "ops"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"kafka_security_protocol": "SASL_SSL"},
            "KAFKA_SECURITY_PROTOCOL=SASL_SSL needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD",
        ),
        ({"kafka_ssl_certfile": "/tls/client.pem"}, "KAFKA_SSL_CERTFILE and KAFKA_SSL_KEYFILE"),
        ({"kafka_security_protocol": "SASL"}, "kafka_security_protocol"),
        ({"kafka_sasl_mechanism": "GSSAPI"}, "kafka_sasl_mechanism"),
    ],
)
def test_incomplete_or_unknown_security_settings_are_refused_at_start_up(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        ServiceSettings.model_validate({"environment": "development", **env})
