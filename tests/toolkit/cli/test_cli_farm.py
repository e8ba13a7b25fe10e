"""`ferminet devices` shows the farm; `ferminet profile --device A --device B` measures on each phone at once."""
import sqlite3
import threading
import time

from android_harness.virtual import VirtualPhone
from toolkit.cli.main import main


def test_devices_shows_the_farm_busy_idle_and_down(tiny_tflite, capsys):
    from toolkit.cli.cmd_devices import farm_view
    from toolkit.targets import ProfileOptions
    from toolkit.targets.android import AndroidTarget

    with VirtualPhone("pixel_6") as a, VirtualPhone("pixel_4a") as b:
        gone = VirtualPhone("pixel_6").start()
        gone.stop()  # an address nobody answers on
        assert main(["devices", "--adb-server", "127.0.0.1:1", "--connect", a.serial, "--connect", b.serial,
                     "--connect", gone.serial]) == 0
        lines = capsys.readouterr().out.splitlines()
        row = {}
        for line in lines[1:4]:  # the farm table: one line per phone under the header
            row[line.split()[0]] = line
        assert "Pixel 6" in row[a.serial] and "GS101" in row[a.serial] and "NONE" in row[a.serial]
        assert "idle" in row[a.serial] and "virtual:pixel_6" in row[a.serial] and "%" in row[a.serial]
        assert "Pixel 4a" in row[b.serial] and "virtual:pixel_4a" in row[b.serial]
        assert "down" in row[gone.serial] and gone.serial in row[gone.serial].split("down", 1)[1]  # and why
        # While a measurement runs on a, the farm view says it is busy (its benchmark's pid file names a live process).
        target = AndroidTarget(a.serial)
        worker = threading.Thread(target=target.profile, args=(tiny_tflite, ProfileOptions(
            num_runs=5, warmup_runs=1, min_secs=4.0, measure_energy=False)))
        worker.start()
        try:
            deadline, busy = time.monotonic() + 40, False
            while not busy and time.monotonic() < deadline and worker.is_alive():
                busy = farm_view([a.serial], "127.0.0.1:1")[0].busy
            assert busy
        finally:
            worker.join()
            target.close()
        assert not farm_view([a.serial], "127.0.0.1:1")[0].busy


def test_profile_on_two_phones_at_once_and_one_down(tiny_tflite, tmp_path, capsys):
    db = tmp_path / "r.db"
    with VirtualPhone("pixel_6") as a, VirtualPhone("pixel_4a") as b:
        args = ["profile", str(tiny_tflite), "--no-energy", "--runs", "5", "--min-secs", "0.3", "--db", str(db),
                "--adb-server", "127.0.0.1:1"]
        assert main(args + ["--device", a.serial, "--device", b.serial]) == 0
        out = capsys.readouterr().out
        assert "measured on 2 of 2 phones" in out and "virtual:pixel_6" in out and "virtual:pixel_4a" in out
        with sqlite3.connect(db) as conn:
            rows = conn.execute("SELECT device, source FROM measurements ORDER BY source").fetchall()
        assert sorted(rows) == sorted([(a.serial, "virtual:pixel_6"), (b.serial, "virtual:pixel_4a")])
        b.stop()
        code = main(args + ["--device", a.serial, "--device", b.serial])
        captured = capsys.readouterr()
        assert code != 0 and len(captured.err.strip().splitlines()) == 1
        assert "1 of 2 phones could not measure" in captured.err and b.serial in captured.err
        assert "measured on 1 of 2 phones" in captured.out
    with sqlite3.connect(db) as conn:  # the phone that measured is recorded; nothing for the one that was down
        assert conn.execute("SELECT COUNT(*), SUM(device = ?) FROM measurements", (a.serial,)).fetchone() == (3, 2)
