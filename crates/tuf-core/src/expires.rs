//! The strict TUF timestamp: `YYYY-MM-DDTHH:MM:SSZ`, UTC, whole seconds, nothing else.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::{Date, Duration, Month, OffsetDateTime, PrimitiveDateTime, Time};

use crate::Error;

/// An expiry time. Always UTC and whole seconds, so it formats back to the exact string it
/// was parsed from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Expires(OffsetDateTime);

impl Expires {
    /// `now` plus `seconds`, truncated to whole seconds.
    pub fn after(now: OffsetDateTime, seconds: i64) -> Result<Self, Error> {
        let t = now
            .checked_add(Duration::seconds(seconds))
            .ok_or_else(|| Error::BadExpires(format!("now + {seconds}s")))?;
        Self::from_unix(t.unix_timestamp())
    }

    /// From seconds since the Unix epoch.
    pub fn from_unix(secs: i64) -> Result<Self, Error> {
        let t = OffsetDateTime::from_unix_timestamp(secs)
            .map_err(|_| Error::BadExpires(secs.to_string()))?;
        if !(0..=9999).contains(&t.year()) {
            return Err(Error::BadExpires(secs.to_string()));
        }
        Ok(Self(t))
    }

    /// Seconds since the Unix epoch.
    pub fn unix(&self) -> i64 {
        self.0.unix_timestamp()
    }

    /// The same instant as an `OffsetDateTime` (UTC).
    pub fn datetime(&self) -> OffsetDateTime {
        self.0
    }

    /// True when this time is at or before `now`: the spec calls metadata expired when
    /// `expires <= now`... and python-tuf rejects when `now >= expires`. Both agree.
    pub fn is_expired_at(&self, now: OffsetDateTime) -> bool {
        self.0 <= now
    }
}

impl FromStr for Expires {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = || Error::BadExpires(s.to_owned());
        let b = s.as_bytes();
        if b.len() != 20
            || b[4] != b'-'
            || b[7] != b'-'
            || b[10] != b'T'
            || b[13] != b':'
            || b[16] != b':'
            || b[19] != b'Z'
        {
            return Err(bad());
        }
        let num = |range: std::ops::Range<usize>| -> Result<u32, Error> {
            let part = &b[range];
            if !part.iter().all(u8::is_ascii_digit) {
                return Err(bad());
            }
            Ok(part
                .iter()
                .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0')))
        };
        let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
        let month = u8::try_from(month)
            .ok()
            .and_then(|m| Month::try_from(m).ok())
            .ok_or_else(bad)?;
        let date = Date::from_calendar_date(year as i32, month, day as u8).map_err(|_| bad())?;
        let time = Time::from_hms(hour as u8, minute as u8, second as u8).map_err(|_| bad())?;
        Ok(Self(PrimitiveDateTime::new(date, time).assume_utc()))
    }
}

impl fmt::Display for Expires {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.0;
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        )
    }
}

impl Serialize for Expires {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Expires {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_exactly() {
        for s in [
            "2030-01-01T00:00:00Z",
            "1970-01-01T00:00:00Z",
            "9999-12-31T23:59:59Z",
        ] {
            assert_eq!(s.parse::<Expires>().unwrap().to_string(), s);
        }
    }

    #[test]
    fn rejects_everything_else() {
        for s in [
            "2030-01-01T00:00:00",
            "2030-01-01T00:00:00.5Z",
            "2030-01-01T00:00:00+00:00",
            "2030-01-01 00:00:00Z",
            "2030-02-30T00:00:00Z",
            "2030-01-01T24:00:00Z",
            "2030-01-01t00:00:00z",
            "+030-01-01T00:00:00Z",
            "",
        ] {
            assert!(
                matches!(s.parse::<Expires>(), Err(Error::BadExpires(ref got)) if got == s),
                "{s}: {:?}",
                s.parse::<Expires>()
            );
        }
    }

    #[test]
    fn expiry_is_inclusive() {
        let e: Expires = "2030-01-01T00:00:00Z".parse().unwrap();
        assert!(e.is_expired_at(e.datetime()));
        assert!(!e.is_expired_at(e.datetime() - Duration::seconds(1)));
    }
}
