//! Local time without a time-zone database: the zone's IANA name and its UTC offset at an
//! instant, read from TZif data (RFC 8536) — the file `TZ` names, else `/etc/localtime` — and
//! the POSIX TZ rule at its end for instants past its last transition. Used for the
//! environment context's `<current_date>` and `<timezone>`; nothing else here needs local time.

use std::path::{Path, PathBuf};

/// Where zone files live when `TZ` names a zone rather than a path.
const ZONEINFO_DIR: &str = "/usr/share/zoneinfo";
/// The system's local zone.
const LOCALTIME: &str = "/etc/localtime";
/// Largest zone file we read (real ones are a few KiB).
const MAX_TZIF_BYTES: u64 = 1024 * 1024;

/// The local zone: its name when known, and the rules that give its offset.
#[derive(Debug, Clone, Default)]
pub struct LocalZone {
    /// IANA name (`Europe/Paris`), or the `TZ` rule text when `TZ` is a bare POSIX rule.
    pub name: Option<String>,
    zone: Option<Zone>,
}

impl LocalZone {
    /// The zone in effect for this process: `TZ` when set (a path, `:path`, a zone name under
    /// `/usr/share/zoneinfo`, or a POSIX rule such as `UTC0`), else `/etc/localtime` (its name
    /// from the symlink target, or `/etc/timezone`). Unreadable data gives UTC without a name.
    pub fn detect() -> Self {
        if let Some(tz) = std::env::var_os("TZ").filter(|v| !v.is_empty()) {
            let tz = tz.to_string_lossy().into_owned();
            return Self::from_tz_var(&tz);
        }
        let zone = read_zone(Path::new(LOCALTIME));
        let name = std::fs::read_link(LOCALTIME)
            .ok()
            .and_then(|target| name_from_path(&target))
            .or_else(|| {
                std::fs::read_to_string("/etc/timezone")
                    .ok()
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
            });
        Self { name, zone }
    }

    fn from_tz_var(tz: &str) -> Self {
        let spec = tz.strip_prefix(':').unwrap_or(tz);
        let path = if Path::new(spec).is_absolute() {
            PathBuf::from(spec)
        } else {
            Path::new(ZONEINFO_DIR).join(spec)
        };
        if let Some(zone) = read_zone(&path) {
            let name = name_from_path(&path).or_else(|| Some(spec.to_string()));
            return Self {
                name,
                zone: Some(zone),
            };
        }
        match PosixRule::parse(spec) {
            Some(rule) => Self {
                name: Some(spec.to_string()),
                zone: Some(Zone::from_rule(rule)),
            },
            None => Self::default(),
        }
    }

    /// Seconds east of UTC at `unix` (0 when unknown).
    pub fn offset_at(&self, unix: i64) -> i64 {
        self.zone.as_ref().map_or(0, |z| z.offset_at(unix))
    }

    /// The local calendar date at `unix` as `YYYY-MM-DD`.
    pub fn date_at(&self, unix: i64) -> String {
        let c = crate::time::civil(unix + self.offset_at(unix));
        format!("{:04}-{:02}-{:02}", c.year, c.month, c.day)
    }
}

fn read_zone(path: &Path) -> Option<Zone> {
    use std::io::Read;
    let file = std::fs::File::open(path).ok()?;
    let mut bytes = Vec::new();
    file.take(MAX_TZIF_BYTES).read_to_end(&mut bytes).ok()?;
    match Zone::parse(&bytes) {
        Ok(zone) => Some(zone),
        Err(e) => {
            crate::log::debug(&format!("zone file {}: {e}", path.display()));
            None
        }
    }
}

/// `…/zoneinfo/Europe/Paris` → `Europe/Paris`.
fn name_from_path(path: &Path) -> Option<String> {
    let text = path.to_string_lossy();
    let (_, name) = text.rsplit_once("zoneinfo/")?;
    (!name.is_empty()).then(|| name.to_string())
}

/// A parsed zone: transitions with the offset each starts, and the rule after the last one.
#[derive(Debug, Clone, PartialEq)]
pub struct Zone {
    /// Transition instants (unix seconds), ascending.
    transitions: Vec<i64>,
    /// The offset (seconds east of UTC) from each transition on.
    offsets: Vec<i64>,
    /// The offset before the first transition.
    initial: i64,
    /// The rule for instants after the last transition (TZif v2+ footer).
    rule: Option<PosixRule>,
}

impl Zone {
    fn from_rule(rule: PosixRule) -> Self {
        Self {
            transitions: Vec::new(),
            offsets: Vec::new(),
            initial: rule.std_offset,
            rule: Some(rule),
        }
    }

    /// Parses TZif data, versions 1 to 4 (the 64-bit block when there is one).
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let (header, body) = Header::read(bytes)?;
        if header.version == 0 {
            return Self::parse_block(&header, body, 4, None);
        }
        let skip = header.block_len(4)?;
        let rest = body.get(skip..).ok_or("truncated version-1 block")?;
        let (header2, body2) = Header::read(rest)?;
        let len2 = header2.block_len(8)?;
        let footer = body2.get(len2..).unwrap_or_default();
        let rule = parse_footer(footer);
        Self::parse_block(&header2, body2, 8, rule)
    }

    fn parse_block(
        h: &Header,
        body: &[u8],
        time_size: usize,
        rule: Option<PosixRule>,
    ) -> Result<Self, String> {
        if body.len() < h.block_len(time_size)? {
            return Err("truncated TZif data".to_string());
        }
        let mut reader = Reader { bytes: body, at: 0 };
        let mut transitions = Vec::with_capacity(h.timecnt);
        for _ in 0..h.timecnt {
            transitions.push(if time_size == 4 {
                i64::from(reader.i32()?)
            } else {
                reader.i64()?
            });
        }
        let indices = reader.take(h.timecnt)?.to_vec();
        let mut types = Vec::with_capacity(h.typecnt);
        for _ in 0..h.typecnt {
            let utoff = i64::from(reader.i32()?);
            reader.take(2)?; // isdst, abbreviation index
            types.push(utoff);
        }
        if types.is_empty() {
            return Err("no local time types".to_string());
        }
        let offsets = indices
            .iter()
            .map(|&i| {
                types
                    .get(usize::from(i))
                    .copied()
                    .ok_or_else(|| format!("transition names missing type {i}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if transitions.windows(2).any(|w| w[0] >= w[1]) {
            return Err("transitions are not ascending".to_string());
        }
        Ok(Self {
            transitions,
            offsets,
            initial: types[0],
            rule,
        })
    }

    /// Seconds east of UTC at `unix`.
    pub fn offset_at(&self, unix: i64) -> i64 {
        match self.transitions.last() {
            Some(&last) if unix >= last => match &self.rule {
                Some(rule) => rule.offset_at(unix),
                None => self.offsets[self.offsets.len() - 1],
            },
            None => self
                .rule
                .as_ref()
                .map_or(self.initial, |rule| rule.offset_at(unix)),
            Some(_) => {
                let after = self.transitions.partition_point(|&t| t <= unix);
                if after == 0 {
                    self.initial
                } else {
                    self.offsets[after - 1]
                }
            }
        }
    }
}

struct Header {
    version: u8,
    isutcnt: usize,
    isstdcnt: usize,
    leapcnt: usize,
    timecnt: usize,
    typecnt: usize,
    charcnt: usize,
}

impl Header {
    const LEN: usize = 44;

    fn read(bytes: &[u8]) -> Result<(Self, &[u8]), String> {
        if bytes.len() < Self::LEN || &bytes[..4] != b"TZif" {
            return Err("not TZif data".to_string());
        }
        let count = |i: usize| -> usize {
            let at = 20 + 4 * i;
            u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize
        };
        let version = match bytes[4] {
            0 => 0,
            v @ b'2'..=b'9' => v - b'0',
            other => return Err(format!("unknown TZif version {other}")),
        };
        let header = Self {
            version,
            isutcnt: count(0),
            isstdcnt: count(1),
            leapcnt: count(2),
            timecnt: count(3),
            typecnt: count(4),
            charcnt: count(5),
        };
        Ok((header, &bytes[Self::LEN..]))
    }

    /// Length of the data block that follows this header.
    fn block_len(&self, time_size: usize) -> Result<usize, String> {
        let parts = [
            self.timecnt.checked_mul(time_size + 1),
            self.typecnt.checked_mul(6),
            Some(self.charcnt),
            self.leapcnt.checked_mul(time_size + 4),
            Some(self.isstdcnt),
            Some(self.isutcnt),
        ];
        parts
            .iter()
            .try_fold(0usize, |sum, part| sum.checked_add((*part)?))
            .ok_or_else(|| "TZif counts overflow".to_string())
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).ok_or("TZif data overflow")?;
        let slice = self.bytes.get(self.at..end).ok_or("truncated TZif data")?;
        self.at = end;
        Ok(slice)
    }

    fn i32(&mut self) -> Result<i32, String> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn i64(&mut self) -> Result<i64, String> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }
}

fn parse_footer(footer: &[u8]) -> Option<PosixRule> {
    let text = std::str::from_utf8(footer).ok()?;
    let line = text.strip_prefix('\n')?.split('\n').next()?;
    PosixRule::parse(line)
}

/// A POSIX TZ rule (`CET-1CEST,M3.5.0,M10.5.0/3`): a standard offset and, optionally, a
/// daylight offset with the dates it starts and ends.
#[derive(Debug, Clone, PartialEq)]
pub struct PosixRule {
    /// Standard time, seconds east of UTC.
    std_offset: i64,
    /// Daylight saving time, when the zone has it.
    dst: Option<Dst>,
}

#[derive(Debug, Clone, PartialEq)]
struct Dst {
    offset: i64,
    start: (DateRule, i64),
    end: (DateRule, i64),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum DateRule {
    /// `Jn`: day 1–365, February 29 never counted.
    Julian1(u32),
    /// `n`: day 0–365, February 29 counted.
    Julian0(u32),
    /// `Mm.w.d`: day `d` (0 = Sunday) of week `w` (5 = last) of month `m`.
    MonthWeekDay(u32, u32, u32),
}

impl PosixRule {
    /// Parses a rule; `None` when it is not one.
    pub fn parse(text: &str) -> Option<Self> {
        let mut p = Parser { s: text.as_bytes() };
        p.name()?;
        let std_offset = -p.offset()?;
        if p.s.is_empty() {
            return Some(Self {
                std_offset,
                dst: None,
            });
        }
        p.name()?;
        let dst_offset = if p.s.first().is_some_and(|&c| c != b',') {
            -p.offset()?
        } else {
            std_offset + 3600
        };
        // No rule after the names: POSIX leaves it to the implementation; use the US rule.
        let (start, end) = if p.s.is_empty() {
            (
                (DateRule::MonthWeekDay(3, 2, 0), 7200),
                (DateRule::MonthWeekDay(11, 1, 0), 7200),
            )
        } else {
            p.expect(b',')?;
            let start = p.date_rule()?;
            p.expect(b',')?;
            let end = p.date_rule()?;
            (start, end)
        };
        if !p.s.is_empty() {
            return None;
        }
        Some(Self {
            std_offset,
            dst: Some(Dst {
                offset: dst_offset,
                start,
                end,
            }),
        })
    }

    /// Seconds east of UTC at `unix`.
    pub fn offset_at(&self, unix: i64) -> i64 {
        let Some(dst) = &self.dst else {
            return self.std_offset;
        };
        let year = crate::time::civil(unix + self.std_offset).year;
        // Both transitions are given in local time: the start in standard time, the end in
        // daylight time.
        let starts = transition_local(year, dst.start) - self.std_offset;
        let ends = transition_local(year, dst.end) - dst.offset;
        let in_dst = if starts < ends {
            unix >= starts && unix < ends
        } else {
            // Southern hemisphere: daylight time spans the new year.
            !(unix >= ends && unix < starts)
        };
        if in_dst { dst.offset } else { self.std_offset }
    }
}

/// The local instant (seconds since the epoch, as if local time were UTC) of a rule's
/// transition in `year`.
fn transition_local(year: i64, (rule, time): (DateRule, i64)) -> i64 {
    let jan1 = crate::time::days_from_civil(year, 1, 1);
    let is_leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let day = match rule {
        DateRule::Julian1(n) => {
            let n = i64::from(n);
            jan1 + n - 1 + i64::from(is_leap && n >= 60)
        }
        DateRule::Julian0(n) => jan1 + i64::from(n),
        DateRule::MonthWeekDay(month, week, weekday) => {
            let first = crate::time::days_from_civil(year, month, 1);
            // 1970-01-01 was a Thursday (4).
            let first_weekday = (first + 4).rem_euclid(7);
            let mut day = first + (i64::from(weekday) - first_weekday).rem_euclid(7);
            day += 7 * (i64::from(week) - 1);
            let (next_year, next_month) = if month == 12 {
                (year + 1, 1)
            } else {
                (year, month + 1)
            };
            let month_end = crate::time::days_from_civil(next_year, next_month, 1);
            while day >= month_end {
                day -= 7;
            }
            day
        }
    };
    day * 86_400 + time
}

struct Parser<'a> {
    s: &'a [u8],
}

impl Parser<'_> {
    fn expect(&mut self, c: u8) -> Option<()> {
        (self.s.first() == Some(&c)).then(|| self.s = &self.s[1..])
    }

    /// A zone abbreviation: letters, or anything between `<` and `>`.
    fn name(&mut self) -> Option<()> {
        if self.s.first() == Some(&b'<') {
            let end = self.s.iter().position(|&c| c == b'>')?;
            self.s = &self.s[end + 1..];
            return (end > 1).then_some(());
        }
        let len = self
            .s
            .iter()
            .take_while(|c| c.is_ascii_alphabetic())
            .count();
        self.s = &self.s[len..];
        (len >= 3).then_some(())
    }

    fn number(&mut self) -> Option<i64> {
        let len = self.s.iter().take_while(|c| c.is_ascii_digit()).count();
        if len == 0 || len > 6 {
            return None;
        }
        let n = std::str::from_utf8(&self.s[..len]).ok()?.parse().ok()?;
        self.s = &self.s[len..];
        Some(n)
    }

    /// `[+-]hh[:mm[:ss]]` in seconds (positive west of Greenwich, as POSIX writes it).
    fn offset(&mut self) -> Option<i64> {
        let sign = match self.s.first() {
            Some(b'-') => {
                self.s = &self.s[1..];
                -1
            }
            Some(b'+') => {
                self.s = &self.s[1..];
                1
            }
            _ => 1,
        };
        let hours = self.number()?;
        let mut seconds = hours * 3600;
        for unit in [60, 1] {
            if self.expect(b':').is_none() {
                break;
            }
            seconds += self.number()? * unit;
        }
        (hours <= 167).then_some(sign * seconds)
    }

    fn date_rule(&mut self) -> Option<(DateRule, i64)> {
        let rule = match self.s.first()? {
            b'J' => {
                self.s = &self.s[1..];
                let n = self.number()?;
                (1..=365)
                    .contains(&n)
                    .then_some(DateRule::Julian1(n as u32))?
            }
            b'M' => {
                self.s = &self.s[1..];
                let m = self.number()?;
                self.expect(b'.')?;
                let w = self.number()?;
                self.expect(b'.')?;
                let d = self.number()?;
                let valid = (1..=12).contains(&m) && (1..=5).contains(&w) && (0..=6).contains(&d);
                valid.then_some(DateRule::MonthWeekDay(m as u32, w as u32, d as u32))?
            }
            _ => {
                let n = self.number()?;
                (0..=365)
                    .contains(&n)
                    .then_some(DateRule::Julian0(n as u32))?
            }
        };
        let time = if self.expect(b'/').is_some() {
            self.offset()?
        } else {
            7200
        };
        Some((rule, time))
    }
}

#[cfg(test)]
#[path = "tz_tests.rs"]
mod tests;
