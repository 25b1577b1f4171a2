//! Sports and their scoring rules: which timeline event types a sport knows, how many points a
//! scoring event is worth by default, and how periods are labelled.

use serde::{Deserialize, Serialize};

use crate::error::ValidationError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Sport {
    Soccer,
    Basketball,
    Baseball,
    IceHockey,
    AmericanFootball,
}

impl Sport {
    pub const ALL: [Sport; 5] = [
        Sport::Soccer,
        Sport::Basketball,
        Sport::Baseball,
        Sport::IceHockey,
        Sport::AmericanFootball,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Sport::Soccer => "SOCCER",
            Sport::Basketball => "BASKETBALL",
            Sport::Baseball => "BASEBALL",
            Sport::IceHockey => "ICE_HOCKEY",
            Sport::AmericanFootball => "AMERICAN_FOOTBALL",
        }
    }

    pub fn parse(raw: &str) -> Option<Sport> {
        Sport::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// The number of regular periods (halves, quarters, innings).
    pub fn regular_periods(self) -> u32 {
        match self {
            Sport::Soccer => 2,
            Sport::Basketball | Sport::AmericanFootball => 4,
            Sport::Baseball => 9,
            Sport::IceHockey => 3,
        }
    }

    /// The label of a period as a scoreboard shows it: "1H", "Q3", "7", "P2", "OT1".
    pub fn period_label(self, period: u32) -> String {
        let regular = self.regular_periods();
        match self {
            Sport::Soccer => match period {
                1 => "1H".into(),
                2 => "2H".into(),
                3 => "ET1".into(),
                4 => "ET2".into(),
                _ => "PEN".into(),
            },
            Sport::Baseball => period.to_string(),
            Sport::Basketball | Sport::AmericanFootball if period <= regular => {
                format!("Q{period}")
            }
            Sport::IceHockey if period <= regular => format!("P{period}"),
            _ => format!("OT{}", period - regular),
        }
    }

    /// The highest period a match of this sport may reach (overtimes and extra innings included).
    pub fn max_period(self) -> u32 {
        match self {
            Sport::Soccer => 5,
            Sport::Baseball => 30,
            _ => self.regular_periods() + 10,
        }
    }
}

/// What happened on a match's timeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventType {
    Goal,
    OwnGoal,
    PenaltyGoal,
    YellowCard,
    RedCard,
    Substitution,
    Run,
    HomeRun,
    FieldGoal,
    ThreePointer,
    FreeThrow,
    Touchdown,
    ExtraPoint,
    TwoPointConversion,
    Safety,
    Penalty,
    Timeout,
    PeriodStart,
    PeriodEnd,
    StatusChange,
    ScoreCorrection,
    Note,
}

impl EventType {
    pub const ALL: [EventType; 22] = [
        EventType::Goal,
        EventType::OwnGoal,
        EventType::PenaltyGoal,
        EventType::YellowCard,
        EventType::RedCard,
        EventType::Substitution,
        EventType::Run,
        EventType::HomeRun,
        EventType::FieldGoal,
        EventType::ThreePointer,
        EventType::FreeThrow,
        EventType::Touchdown,
        EventType::ExtraPoint,
        EventType::TwoPointConversion,
        EventType::Safety,
        EventType::Penalty,
        EventType::Timeout,
        EventType::PeriodStart,
        EventType::PeriodEnd,
        EventType::StatusChange,
        EventType::ScoreCorrection,
        EventType::Note,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Goal => "GOAL",
            EventType::OwnGoal => "OWN_GOAL",
            EventType::PenaltyGoal => "PENALTY_GOAL",
            EventType::YellowCard => "YELLOW_CARD",
            EventType::RedCard => "RED_CARD",
            EventType::Substitution => "SUBSTITUTION",
            EventType::Run => "RUN",
            EventType::HomeRun => "HOME_RUN",
            EventType::FieldGoal => "FIELD_GOAL",
            EventType::ThreePointer => "THREE_POINTER",
            EventType::FreeThrow => "FREE_THROW",
            EventType::Touchdown => "TOUCHDOWN",
            EventType::ExtraPoint => "EXTRA_POINT",
            EventType::TwoPointConversion => "TWO_POINT_CONVERSION",
            EventType::Safety => "SAFETY",
            EventType::Penalty => "PENALTY",
            EventType::Timeout => "TIMEOUT",
            EventType::PeriodStart => "PERIOD_START",
            EventType::PeriodEnd => "PERIOD_END",
            EventType::StatusChange => "STATUS_CHANGE",
            EventType::ScoreCorrection => "SCORE_CORRECTION",
            EventType::Note => "NOTE",
        }
    }

    /// Events the server writes itself; `recordEvent` refuses them so the timeline stays honest.
    pub fn is_system(self) -> bool {
        matches!(self, EventType::StatusChange | EventType::ScoreCorrection)
    }

    /// Whether this type changes the score in `sport`, and its default points there.
    /// `None` means the type does not apply to the sport at all.
    pub fn rule_in(self, sport: Sport) -> Option<EventRule> {
        use EventType::*;
        use Sport::*;
        let scoring = |points| Some(EventRule::Scoring { points });
        match (self, sport) {
            (Goal | OwnGoal | PenaltyGoal, Soccer | IceHockey) => scoring(1),
            (YellowCard | RedCard, Soccer) => Some(EventRule::Plain),
            (Run | HomeRun, Baseball) => scoring(1),
            (FieldGoal, Basketball) => scoring(2),
            (ThreePointer, Basketball) => scoring(3),
            (FreeThrow, Basketball) => scoring(1),
            (Touchdown, AmericanFootball) => scoring(6),
            (FieldGoal, AmericanFootball) => scoring(3),
            (ExtraPoint, AmericanFootball) => scoring(1),
            (TwoPointConversion | Safety, AmericanFootball) => scoring(2),
            (Penalty, IceHockey | AmericanFootball | Basketball) => Some(EventRule::Plain),
            (Timeout, Basketball | AmericanFootball | IceHockey) => Some(EventRule::Plain),
            (Substitution | PeriodStart | PeriodEnd | StatusChange | ScoreCorrection | Note, _) => {
                Some(EventRule::Plain)
            }
            _ => None,
        }
    }

    /// The rule for this type in `sport`, or a clear refusal.
    pub fn rule_for(self, sport: Sport) -> Result<EventRule, ValidationError> {
        self.rule_in(sport).ok_or_else(|| {
            ValidationError::new(
                "type",
                format!("{} is not an event of {}", self.as_str(), sport.as_str()),
            )
        })
    }
}

/// How an event type behaves in a sport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventRule {
    /// Adds points to the side it names.
    Scoring { points: u32 },
    /// Recorded on the timeline; the score is unchanged.
    Plain,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_points_follow_each_sport() {
        let points = |t: EventType, s| match t.rule_in(s) {
            Some(EventRule::Scoring { points }) => points,
            other => panic!("{t:?} in {s:?} is {other:?}"),
        };
        assert_eq!(points(EventType::Goal, Sport::Soccer), 1);
        assert_eq!(points(EventType::OwnGoal, Sport::Soccer), 1);
        assert_eq!(points(EventType::PenaltyGoal, Sport::Soccer), 1);
        assert_eq!(points(EventType::Goal, Sport::IceHockey), 1);
        assert_eq!(points(EventType::FieldGoal, Sport::Basketball), 2);
        assert_eq!(points(EventType::ThreePointer, Sport::Basketball), 3);
        assert_eq!(points(EventType::FreeThrow, Sport::Basketball), 1);
        assert_eq!(points(EventType::Run, Sport::Baseball), 1);
        assert_eq!(points(EventType::HomeRun, Sport::Baseball), 1);
        assert_eq!(points(EventType::Touchdown, Sport::AmericanFootball), 6);
        assert_eq!(points(EventType::FieldGoal, Sport::AmericanFootball), 3);
        assert_eq!(points(EventType::ExtraPoint, Sport::AmericanFootball), 1);
        assert_eq!(points(EventType::Safety, Sport::AmericanFootball), 2);
    }

    #[test]
    fn an_event_type_foreign_to_the_sport_is_refused() {
        let err = EventType::Touchdown.rule_for(Sport::Soccer).unwrap_err();
        assert_eq!(err.to_string(), "type: TOUCHDOWN is not an event of SOCCER");
        assert!(EventType::Goal.rule_for(Sport::Basketball).is_err());
        assert!(EventType::ThreePointer.rule_for(Sport::Baseball).is_err());
    }

    #[test]
    fn cards_and_notes_do_not_score() {
        assert_eq!(
            EventType::YellowCard.rule_in(Sport::Soccer),
            Some(EventRule::Plain)
        );
        assert_eq!(
            EventType::Note.rule_in(Sport::Baseball),
            Some(EventRule::Plain)
        );
    }

    #[test]
    fn periods_are_labelled_as_scoreboards_show_them() {
        assert_eq!(Sport::Soccer.period_label(2), "2H");
        assert_eq!(Sport::Soccer.period_label(3), "ET1");
        assert_eq!(Sport::Basketball.period_label(4), "Q4");
        assert_eq!(Sport::Basketball.period_label(5), "OT1");
        assert_eq!(Sport::IceHockey.period_label(4), "OT1");
        assert_eq!(Sport::Baseball.period_label(11), "11");
    }

    #[test]
    fn sports_round_trip_through_their_names() {
        for s in Sport::ALL {
            assert_eq!(Sport::parse(s.as_str()), Some(s));
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
        for t in EventType::ALL {
            assert_eq!(
                serde_json::to_string(&t).unwrap(),
                format!("\"{}\"", t.as_str())
            );
        }
    }
}
