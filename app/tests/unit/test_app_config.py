"""Settings from the environment and from the rendered secrets file."""

import pytest

from imagehost.config import (DEFAULT_MAX_UPLOAD_BYTES, ConfigError, Settings, load_settings, parse_bytes,
                              parse_env_file, parse_sizes, redact_url, with_credentials)


def test_defaults_match_the_documented_ones():
    s = load_settings({})
    assert s.sizes == (128, 512, 1024)
    assert s.max_upload_bytes == DEFAULT_MAX_UPLOAD_BYTES == 20 * 1024 * 1024
    assert s.s3_bucket == "images"
    assert s.serve_mode == "stream"
    assert s.port == 8000


def test_env_file_syntax():
    text = """
# rendered by Nomad
APP_S3_BUCKET=photos
export APP_S3_REGION = eu-west-1
APP_S3_SECRET_KEY="abc==def"
APP_S3_ACCESS_KEY='minio user'
APP_EMPTY=
APP_HASH=a#b
"""
    assert parse_env_file(text) == {
        "APP_S3_BUCKET": "photos",
        "APP_S3_REGION": "eu-west-1",
        "APP_S3_SECRET_KEY": "abc==def",
        "APP_S3_ACCESS_KEY": "minio user",
        "APP_EMPTY": "",
        "APP_HASH": "a#b",
    }


@pytest.mark.parametrize("line", ["just-a-secret-value", "=value", "BAD KEY=x", "1KEY=x"])
def test_bad_env_file_line_names_the_line_not_its_content(line):
    with pytest.raises(ConfigError) as err:
        parse_env_file(f"APP_OK=1\n{line}\n", source="/secrets/app.env")
    assert str(err.value) == "/secrets/app.env:2: expected KEY=VALUE"


def test_config_file_overrides_and_adds_to_the_environment(tmp_path):
    path = tmp_path / "app.env"
    path.write_text("APP_S3_BUCKET=from-file\nAPP_S3_SECRET_KEY=s3cret\nAPP_SIZES=64,256\n")
    env = {"APP_CONFIG_FILE": str(path), "APP_S3_BUCKET": "from-env", "APP_S3_REGION": "from-env"}
    s = load_settings(env)
    assert s.s3_bucket == "from-file"
    assert s.s3_region == "from-env"
    assert s.s3_secret_key == "s3cret"
    assert s.sizes == (64, 256)


def test_missing_config_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="APP_CONFIG_FILE=.*cannot read"):
        load_settings({"APP_CONFIG_FILE": str(tmp_path / "absent.env")})


def test_file_indirection_for_single_secrets(tmp_path):
    (tmp_path / "key").write_text("from-secret-file\n")
    s = load_settings({"APP_S3_SECRET_KEY_FILE": str(tmp_path / "key")})
    assert s.s3_secret_key == "from-secret-file"
    # An explicit value wins over the indirection.
    s = load_settings({"APP_S3_SECRET_KEY_FILE": str(tmp_path / "key"), "APP_S3_SECRET_KEY": "direct"})
    assert s.s3_secret_key == "direct"


@pytest.mark.parametrize("value, expected", [
    ("128,512,1024", (128, 512, 1024)),
    ("1024, 128 ,512,128", (128, 512, 1024)),
    ("256", (256,)),
    ("64;32", (32, 64)),
])
def test_sizes_are_sorted_and_deduplicated(value, expected):
    assert parse_sizes(value) == expected


@pytest.mark.parametrize("value", ["", ",", "0", "-5", "12.5", "abc", "20000"])
def test_bad_sizes_are_refused(value):
    with pytest.raises(ConfigError, match="APP_SIZES"):
        parse_sizes(value)


@pytest.mark.parametrize("value, expected", [
    ("20971520", 20971520), ("20M", 20971520), ("20MB", 20971520), ("20MiB", 20971520),
    ("512k", 524288), ("1G", 1073741824), ("100b", 100), (" 7 ", 7),
])
def test_byte_sizes(value, expected):
    assert parse_bytes(value) == expected


@pytest.mark.parametrize("value", ["0", "-1", "20 MBs", "twenty", "1.5M"])
def test_bad_byte_sizes(value):
    with pytest.raises(ConfigError, match="APP_MAX_UPLOAD_BYTES"):
        parse_bytes(value)


@pytest.mark.parametrize("env, message", [
    ({"APP_PORT": "http"}, "APP_PORT"),
    ({"APP_PORT": "70000"}, "APP_PORT"),
    ({"APP_JPEG_QUALITY": "0"}, "APP_JPEG_QUALITY"),
    ({"APP_SERVE_MODE": "proxy"}, "APP_SERVE_MODE"),
    ({"APP_LOG_LEVEL": "loud"}, "APP_LOG_LEVEL"),
    ({"APP_WORKER_CONCURRENCY": "0"}, "APP_WORKER_CONCURRENCY"),
])
def test_malformed_settings_name_the_variable(env, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(env)


def test_broker_credentials_are_quoted_into_every_url():
    url = with_credentials("amqp://h1:5672/app;amqp://old:pw@h2:5672/app", "imagehost", "p@ss:w/rd%")
    assert url == ("amqp://imagehost:p%40ss%3Aw%2Frd%25@h1:5672/app;"
                   "amqp://imagehost:p%40ss%3Aw%2Frd%25@h2:5672/app")
    assert with_credentials("amqp://u:old@h/v", None, "new") == "amqp://u:new@h/v"
    assert with_credentials("amqp://u:old@h/v", None, None) == "amqp://u:old@h/v"


def test_broker_password_from_its_own_setting():
    s = load_settings({"APP_BROKER_URL": "amqp://rabbit.service.consul:5672/imagehost",
                       "APP_BROKER_USER": "imagehost", "APP_BROKER_PASSWORD": "hunter2"})
    assert s.broker_url == "amqp://imagehost:hunter2@rabbit.service.consul:5672/imagehost"


def test_secrets_never_appear_in_repr_or_summary():
    s = load_settings({"APP_S3_ACCESS_KEY": "AKIAVISIBLE", "APP_S3_SECRET_KEY": "topsecretkey",
                       "APP_BROKER_URL": "amqp://user:brokerpassword@h:5672/v"})
    for text in (repr(s), str(s), str(s.summary())):
        assert "topsecretkey" not in text
        assert "brokerpassword" not in text
    summary = s.summary()
    assert summary["s3_secret_key"] == "***"
    assert summary["broker_url"] == "amqp://user:***@h:5672/v"
    assert summary["s3_access_key"] == "AKIAVISIBLE"  # an access key id is not a secret


def test_redact_url_leaves_urls_without_password_alone():
    assert redact_url("amqp://h:5672//") == "amqp://h:5672//"
    assert redact_url("amqp://user@h//") == "amqp://user@h//"
    assert redact_url("amqp://a:b@h1//;amqp://c:d@h2//") == "amqp://a:***@h1//;amqp://c:***@h2//"


def test_settings_are_immutable():
    s = Settings()
    with pytest.raises(AttributeError):
        s.s3_bucket = "other"  # type: ignore[misc]
