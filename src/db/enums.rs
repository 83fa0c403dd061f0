//! The SQL side of `domain::status` and `domain::ids`: every status and kind is a `Text`
//! column holding its `as_str`, every typed id a `BigInt`, on either backend.

use crate::domain::attendance::AttendanceStatus;
use crate::domain::ids::*;
use crate::domain::patient::PatientStatus;
use crate::domain::staffing::Role as TeamRole;
use crate::domain::status::*;
use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql};
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::{BigInt, Text};

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

macro_rules! id_column {
    ($($name:ident),+ $(,)?) => {$(
        impl<DB> FromSql<BigInt, DB> for $name
        where
            DB: Backend,
            i64: FromSql<BigInt, DB>,
        {
            fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
                i64::from_sql(bytes).map($name)
            }
        }

        impl<DB> ToSql<BigInt, DB> for $name
        where
            DB: Backend,
            i64: ToSql<BigInt, DB>,
        {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> serialize::Result {
                self.0.to_sql(out)
            }
        }
    )+};
}

id_column!(
    ProgramId,
    PatientId,
    CohortId,
    SessionId,
    FacilitatorId,
    UserId
);
