//! The SQL side of `domain::status`: every status and kind is a `Text` column holding
//! its `as_str`, on either backend.

use crate::domain::attendance::AttendanceStatus;
use crate::domain::patient::PatientStatus;
use crate::domain::staffing::Role as TeamRole;
use crate::domain::status::*;
use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql};
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::Text;

macro_rules! text_column {
    ($($name:ident),+ $(,)?) => {$(
        impl<DB> FromSql<Text, DB> for $name
        where
            DB: Backend,
            String: FromSql<Text, DB>,
        {
            fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
                let text = String::from_sql(bytes)?;
                text.parse::<$name>().map_err(Into::into)
            }
        }

        impl<DB> ToSql<Text, DB> for $name
        where
            DB: Backend,
            str: ToSql<Text, DB>,
        {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> serialize::Result {
                self.as_str().to_sql(out)
            }
        }
    )+};
}

text_column!(
    CohortStatus,
    CohortKind,
    MemberStatus,
    SessionStatus,
    FollowUpKind,
    FollowUpStatus,
    OutboxStatus,
    RecipientType,
    MailKind,
    InvitationStatus,
    RsvpResponse,
    TeamRole,
    AttendanceStatus,
    PatientStatus,
);
