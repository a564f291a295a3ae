//! Schedules for background jobs: "daily", "hourly", "weekly", "off", or a
//! 5-field cron expression (croner), always in UTC.

use chrono::{DateTime, Utc};

#[derive(Clone, Debug)]
pub enum Schedule {
    Off,
    Cron(Box<croner::Cron>),
}

impl Schedule {
    pub fn parse(s: &str) -> Result<Schedule, String> {
        let expr = match s.trim() {
            "off" | "" => return Ok(Schedule::Off),
            "daily" => "0 3 * * *",
            "hourly" => "0 * * * *",
            "weekly" => "0 4 * * 0",
            other => other,
        };
        croner::Cron::new(expr)
            .parse()
            .map(|c| Schedule::Cron(Box::new(c)))
            .map_err(|e| format!("`{s}` is not a schedule ({e}); use daily, hourly, weekly, off or a cron expression like \"30 2 * * *\""))
    }

    /// The next time after `now`, if any.
    pub fn next_after(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Off => None,
            Schedule::Cron(c) => c.find_next_occurrence(&now, false).ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_and_cron_schedules() {
        let now = DateTime::parse_from_rfc3339("2026-11-22T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let next = Schedule::parse("daily").unwrap().next_after(now).unwrap();
        assert_eq!(next.to_rfc3339(), "2026-11-23T03:00:00+00:00");
        assert!(Schedule::parse("off").unwrap().next_after(now).is_none());
        assert!(Schedule::parse("every day please").is_err());
        assert_eq!(
            Schedule::parse("30 2 * * *")
                .unwrap()
                .next_after(now)
                .unwrap()
                .to_rfc3339(),
            "2026-11-23T02:30:00+00:00"
        );
    }
}
