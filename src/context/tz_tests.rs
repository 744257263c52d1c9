#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

/// Unix seconds of a UTC date and time.
fn utc(y: i64, mo: u32, d: u32, h: i64, mi: i64) -> i64 {
    crate::time::days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60
}

/// Builds TZif data: `version` 0 (v1 only) or 2; transitions as (instant, type index); types as
/// UTC offsets; the footer rule for v2.
fn tzif(version: u8, transitions: &[(i64, u8)], types: &[i32], footer: &str) -> Vec<u8> {
    fn header(out: &mut Vec<u8>, version: u8, timecnt: usize, typecnt: usize) {
        out.extend_from_slice(b"TZif");
        out.push(version);
        out.extend_from_slice(&[0; 15]);
        // isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt
        for n in [0, 0, 0, timecnt, typecnt, 4] {
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
    }
    fn block(out: &mut Vec<u8>, transitions: &[(i64, u8)], types: &[i32], wide: bool) {
        for (t, _) in transitions {
            if wide {
                out.extend_from_slice(&t.to_be_bytes());
            } else {
                out.extend_from_slice(&(*t as i32).to_be_bytes());
            }
        }
        out.extend(transitions.iter().map(|(_, i)| *i));
        for off in types {
            out.extend_from_slice(&off.to_be_bytes());
            out.extend_from_slice(&[0, 0]);
        }
        out.extend_from_slice(b"ABC\0");
    }
    let mut out = Vec::new();
    if version == 0 {
        header(&mut out, 0, transitions.len(), types.len());
        block(&mut out, transitions, types, false);
        return out;
    }
    // A minimal version-1 block, as `zic -b slim` writes, then the 64-bit data and footer.
    header(&mut out, b'0' + version, 0, 1);
    block(&mut out, &[], &[0], false);
    header(&mut out, b'0' + version, transitions.len(), types.len());
    block(&mut out, transitions, types, true);
    out.extend_from_slice(format!("\n{footer}\n").as_bytes());
    out
}

#[test]
fn rules_give_offsets_and_switch_at_the_right_instants() {
    let new_york = PosixRule::parse("EST5EDT,M3.2.0,M11.1.0").unwrap();
    let sydney = PosixRule::parse("AEST-10AEDT,M10.1.0,M4.1.0/3").unwrap();
    let kiritimati = PosixRule::parse("<+14>-14").unwrap();
    let india = PosixRule::parse("IST-5:30").unwrap();
    let julian = PosixRule::parse("XST3XDT,J60/0,J300/0").unwrap();
    let cases: &[(&PosixRule, i64, i64)] = &[
        (&new_york, utc(2026, 1, 15, 12, 0), -5 * 3600),
        (&new_york, utc(2026, 7, 1, 12, 0), -4 * 3600),
        // 2026-03-08 02:00 EST = 07:00Z; 2026-11-01 02:00 EDT = 06:00Z.
        (&new_york, utc(2026, 3, 8, 6, 59), -5 * 3600),
        (&new_york, utc(2026, 3, 8, 7, 0), -4 * 3600),
        (&new_york, utc(2026, 11, 1, 5, 59), -4 * 3600),
        (&new_york, utc(2026, 11, 1, 6, 0), -5 * 3600),
        (&sydney, utc(2026, 1, 15, 0, 0), 11 * 3600),
        (&sydney, utc(2026, 7, 1, 0, 0), 10 * 3600),
        (&sydney, utc(2026, 12, 31, 23, 0), 11 * 3600),
        (&kiritimati, utc(2026, 11, 30, 12, 0), 14 * 3600),
        (&india, utc(2026, 5, 5, 5, 5), 5 * 3600 + 1800),
        // J60 is March 1 in every year; 00:00 local standard time (UTC-3) = 03:00Z.
        (&julian, utc(2028, 3, 1, 2, 59), -3 * 3600),
        (&julian, utc(2028, 3, 1, 3, 0), -2 * 3600),
    ];
    for (rule, at, offset) in cases {
        assert_eq!(rule.offset_at(*at), *offset, "{rule:?} at {at}");
    }
}

#[test]
fn rule_syntax() {
    for good in [
        "UTC0",
        "<-03>3",
        "CET-1CEST,M3.5.0,M10.5.0/3",
        "EST5EDT",
        "A<B>",
        "WET0WEST,M3.5.0/1,M10.5.0",
    ] {
        let parsed = PosixRule::parse(good);
        if good == "A<B>" {
            assert!(parsed.is_none(), "{good}");
        } else {
            assert!(parsed.is_some(), "{good}");
        }
    }
    for bad in [
        "",
        "U0",
        "UTC",
        "UTC+",
        "CET-1CEST,M13.1.0,M10.5.0",
        "CET-1CEST,M3.5.0",
        "UTC0x",
    ] {
        assert!(PosixRule::parse(bad).is_none(), "{bad}");
    }
}

#[test]
fn tzif_tables_and_footers() {
    // Version 1: a table only; before the first transition the first type applies.
    let v1 = Zone::parse(&tzif(0, &[(1000, 1), (2000, 0)], &[3600, 7200], "")).unwrap();
    assert_eq!(v1.offset_at(0), 3600);
    assert_eq!(v1.offset_at(1000), 7200);
    assert_eq!(v1.offset_at(1999), 7200);
    assert_eq!(v1.offset_at(5000), 3600);
    // Version 2 with the footer taking over after the last transition.
    let paris_like = tzif(
        2,
        &[(utc(1990, 1, 1, 0, 0), 0)],
        &[3600],
        "CET-1CEST,M3.5.0,M10.5.0/3",
    );
    let zone = Zone::parse(&paris_like).unwrap();
    assert_eq!(zone.offset_at(utc(1980, 1, 1, 0, 0)), 3600);
    assert_eq!(zone.offset_at(utc(2026, 1, 1, 0, 0)), 3600);
    assert_eq!(zone.offset_at(utc(2026, 7, 1, 0, 0)), 7200);
    // A slim file: no transitions at all, the footer decides everything.
    let slim = Zone::parse(&tzif(2, &[], &[-18000], "EST5EDT,M3.2.0,M11.1.0")).unwrap();
    assert_eq!(slim.offset_at(utc(2026, 7, 1, 0, 0)), -4 * 3600);
    // A fixed zone.
    let utc_zone = Zone::parse(&tzif(2, &[], &[0], "UTC0")).unwrap();
    assert_eq!(utc_zone.offset_at(utc(2026, 7, 1, 0, 0)), 0);
}

#[test]
fn broken_tzif_is_an_error_not_a_panic() {
    let good = tzif(2, &[(100, 0)], &[3600], "CET-1");
    for n in 0..good.len() {
        // Truncations either fail cleanly or (when only the footer is cut) still parse.
        let _ = Zone::parse(&good[..n]);
    }
    assert!(Zone::parse(b"not a zone file at all, definitely not").is_err());
    let mut bad_version = good.clone();
    bad_version[4] = b'x';
    assert!(Zone::parse(&bad_version).is_err());
    assert!(Zone::parse(&tzif(0, &[(100, 5)], &[3600], "")).is_err());
    let mut huge = tzif(0, &[(100, 0)], &[3600], "");
    huge[32..36].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(Zone::parse(&huge).is_err());
    assert!(Zone::parse(&tzif(0, &[(200, 0), (100, 0)], &[0], "")).is_err());
}

#[test]
fn local_zone_from_a_tz_value() {
    let dir = std::env::temp_dir().join(format!("codex-lite-tz-{}", std::process::id()));
    let zone_dir = dir.join("zoneinfo").join("Test");
    std::fs::create_dir_all(&zone_dir).unwrap();
    let file = zone_dir.join("Plus14");
    std::fs::write(&file, tzif(2, &[], &[14 * 3600], "<+14>-14")).unwrap();
    let zone = LocalZone::from_tz_var(&format!(":{}", file.display()));
    assert_eq!(zone.name.as_deref(), Some("Test/Plus14"));
    assert_eq!(zone.date_at(utc(2026, 11, 30, 12, 0)), "2026-12-01");
    let rule_only = LocalZone::from_tz_var("<-05>5");
    assert_eq!(rule_only.name.as_deref(), Some("<-05>5"));
    assert_eq!(rule_only.date_at(utc(2026, 1, 1, 3, 0)), "2025-12-31");
    let unknown = LocalZone::from_tz_var("No/Such_Zone");
    assert_eq!(unknown.name, None);
    assert_eq!(unknown.date_at(utc(2026, 1, 1, 3, 0)), "2026-01-01");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn zone_names_from_paths() {
    let cases = [
        ("/usr/share/zoneinfo/Europe/Paris", Some("Europe/Paris")),
        ("../usr/share/zoneinfo/Etc/UTC", Some("Etc/UTC")),
        (
            "/var/db/timezone/zoneinfo/America/New_York",
            Some("America/New_York"),
        ),
        ("/etc/localtime", None),
        ("/usr/share/zoneinfo/", None),
    ];
    for (path, name) in cases {
        assert_eq!(name_from_path(Path::new(path)).as_deref(), name, "{path}");
    }
}
