"""Start-up with a bad configuration: one clear line naming the key, non-zero exit."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from station.cli.main import main

ROOT = Path(__file__).resolve().parents[2]

GOOD = """
station_id = "t-01"
state_dir = "STATE"
[central]
url = "http://127.0.0.1:9"
trusted_keys = { "central-1" = "PUB" }
[printer.options]
state_file = "STATE/printer.json"
"""


@pytest.fixture
def write(tmp_path: Path):
    pub = tmp_path / "central.pub"
    pub.write_text("11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n")

    def _write(text: str = GOOD) -> Path:
        path = tmp_path / "station.toml"
        path.write_text(text.replace("STATE", str(tmp_path / "state")).replace("PUB", str(pub)))
        return path

    return _write


def run_main(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(args)
    err = capsys.readouterr().err.strip()
    return code, err


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda t: t.replace('station_id = "t-01"', ""),
            "config error: station_id is required but missing",
        ),
        (
            lambda t: t.replace('station_id = "t-01"', 'station_id = "t 01"'),
            "config error: station_id is invalid",
        ),
        (
            lambda t: t + "\n[pipeline]\nmax_attempts = 0\n",
            "config error: pipeline.max_attempts is invalid (Input should be greater than or "
            "equal to 1; got 0)",
        ),
        (
            lambda t: t.replace("[printer.options]", '[printer]\ndriver = "hp"\n[printer.options]'),
            "config error: printer.driver is invalid (unknown printer driver 'hp'",
        ),
        (lambda t: "colour = 1\n" + t, "config error: unknown key colour in"),
        (
            lambda t: t + "\ncolour = 1\n",
            "config error: printer.options: sim printer options: colour: Extra inputs",
        ),
        (
            lambda t: t.replace('url = "http://127.0.0.1:9"', 'url = "ftp:/x"'),
            "config error: central.url is invalid",
        ),
        (lambda t: t + "\n[central.x\n", "is not valid TOML"),
        (
            lambda t: t.replace("[central]", '[central]\ntimeout_s = "fast"'),
            "config error: central.timeout_s is invalid (Input should be a valid number",
        ),
    ],
)
def test_bad_value_names_the_key(write, capsys, edit, expected) -> None:
    """Each kind of bad value stops start-up with one line that names the key and the fix."""
    path = write(edit(GOOD))
    code, err = run_main(["--config", str(path), "run"], capsys)
    assert code == 78
    assert len(err.splitlines()) == 1, err
    assert expected in err
    if not any(w in expected for w in ("unknown key", "TOML", "options")):
        assert "set it in" in err
        assert "STATION_" in err


def test_missing_file_says_how_to_point_at_one(tmp_path, capsys) -> None:
    """A missing config file names the path and both ways to give another."""
    code, err = run_main(["--config", str(tmp_path / "none.toml"), "status"], capsys)
    assert code == 78
    assert err == (
        f"config file {tmp_path / 'none.toml'} not found: pass --config PATH or set STATION_CONFIG"
    )


def test_environment_overrides_file_and_is_named_when_bad(write, capsys, monkeypatch) -> None:
    """STATION_* variables override the file; a bad one is named by its variable."""
    path = write()
    monkeypatch.setenv("STATION_CENTRAL__BUFFER_TARGET", "-5")
    code, err = run_main(["--config", str(path), "run"], capsys)
    assert code == 78
    assert "central.buffer_target is invalid" in err
    assert "STATION_CENTRAL__BUFFER_TARGET" in err


def test_unreadable_trusted_key_is_named(write, tmp_path, capsys) -> None:
    """A trusted key file that does not exist stops start-up naming the key id and path."""
    path = write()
    (tmp_path / "central.pub").unlink()
    code, err = run_main(["--config", str(path), "run"], capsys)
    assert code == 78
    assert err.startswith("config error: central.trusted_keys.central-1: cannot read")


def test_data_key_readable_by_others_is_refused(write, tmp_path, capsys) -> None:
    """A data key file that others can read stops start-up with the chmod to run."""
    path = write()
    key = tmp_path / "state" / "data.key"
    key.parent.mkdir()
    key.write_bytes(os.urandom(32))
    key.chmod(0o644)
    code, err = run_main(["--config", str(path), "run"], capsys)
    assert code == 78
    assert err == f"data key file {key} is readable by others (mode 644): run chmod 600 {key}"


def test_real_command_exits_non_zero(write) -> None:
    """The installed command itself exits non-zero with the one line on stderr."""
    path = write(GOOD.replace('station_id = "t-01"', ""))
    proc = subprocess.run(
        [sys.executable, "-m", "station.cli.main", "--config", str(path), "run"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 78
    assert proc.stderr.strip().splitlines() == [
        f"config error: station_id is required but missing: set it in {path} or with "
        "STATION_STATION_ID"
    ]


def test_config_path_that_is_a_directory_is_named(tmp_path, capsys) -> None:
    """--config pointing at a directory gives one line saying so, exit 78."""
    code, err = run_main(["--config", str(tmp_path), "run"], capsys)
    assert code == 78
    assert err == (
        f"config file {tmp_path} is a directory: pass --config with the path "
        "of the TOML file itself"
    )


def test_config_that_is_not_utf8_is_named(write, capsys) -> None:
    """A config file saved in Latin-1 gives one line naming the file and the byte, exit 78."""
    path = write()
    path.write_bytes(
        path.read_bytes() + "\n# Kabupaten Bogor – café\n".encode("latin-1", "replace")
    )
    code, err = run_main(["--config", str(path), "status"], capsys)
    assert code == 78
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"config file {path} is not UTF-8 text (byte ")


def test_state_dir_that_is_a_file_is_named(write, tmp_path, capsys) -> None:
    """A state_dir that is a plain file stops start-up naming the key, exit 78."""
    path = write()
    (tmp_path / "state").write_text("oops")
    code, err = run_main(["--config", str(path), "run"], capsys)
    assert code == 78
    assert err == (
        f"config error: state_dir {tmp_path / 'state'} is not a directory: "
        "set state_dir to a directory"
    )


def as_other_user(argv: list[str]) -> subprocess.CompletedProcess[str]:
    """``station …`` as a user the files are not theirs: root without the capabilities
    that bypass file permissions (the service user's view of another owner's files)."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to drop the permission-bypass capabilities")
    return subprocess.run(
        [
            "setpriv",
            "--bounding-set",
            "-dac_override,-dac_read_search",
            sys.executable,
            "-m",
            "station.cli.main",
            *argv,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def test_state_dir_not_writable_is_named(write, tmp_path) -> None:
    """A state dir owned by someone else (mode 0700) stops start-up with one line naming
    state_dir and its owner, exit 78, no traceback."""
    path = write()
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    os.chown(state, 65534, 65534)
    proc = as_other_user(["--config", str(path), "run"])
    assert proc.returncode == 78, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"config error: state_dir {state} is not writable by this user (uid 0): set "
        "state_dir in the config, or run as the service user (uid 65534)"
    ]


def test_data_key_unreadable_by_the_user_is_named(write, tmp_path) -> None:
    """A data key file the running user cannot read gives one line naming the file and
    who owns it, exit 78, no traceback."""
    path = write()
    key = tmp_path / "keys" / "data.key"
    key.parent.mkdir()
    key.write_bytes(os.urandom(32))
    key.chmod(0o600)
    os.chown(key, 65534, 65534)
    path.write_text(path.read_text().replace("[central]", f'data_key_file = "{key}"\n[central]'))
    proc = as_other_user(["--config", str(path), "run"])
    assert proc.returncode == 78, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"data key file {key} is not readable by this user (uid 0, the file's owner is uid "
        "65534): run as the service user (sudo -u ektp-station station …)"
    ]


@pytest.mark.parametrize(
    ("listen", "expected"),
    [
        ("9464", "config error: metrics.listen is invalid"),
        ("127.0.0.1:99999", "config error: metrics.listen is invalid (the port must be 1-65535"),
    ],
)
def test_bad_metrics_listen_is_named(write, capsys, listen: str, expected: str) -> None:
    """A metrics listen address without a port, or with one out of range, is named."""
    code, err = run_main(
        ["--config", str(write(GOOD + f'\n[metrics]\nlisten = "{listen}"\n')), "run"], capsys
    )
    assert code == 78
    assert expected in err
