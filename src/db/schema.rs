// Portable diesel schema shared by both backends: UTC `Timestamp`s, JSON as `Text`.

diesel::table! {
    programs (id) {
        id -> BigInt,
        name -> Text,
        site -> Text,
        timezone -> Text,
        modality -> Text,
        venue -> Nullable<Text>,
        join_url -> Nullable<Text>,
        rules -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    users (id) {
        id -> BigInt,
        email -> Text,
        name -> Text,
        role -> Text,
        password_hash -> Text,
        facilitator_id -> Nullable<BigInt>,
        failed_logins -> Integer,
        locked_until -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    user_programs (user_id, program_id) {
        user_id -> BigInt,
        program_id -> BigInt,
    }
}

diesel::table! {
    api_tokens (id) {
        id -> BigInt,
        user_id -> BigInt,
        token_hash -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    audit_log (id) {
        id -> BigInt,
        at -> Timestamp,
        actor_user_id -> Nullable<BigInt>,
        action -> Text,
        entity -> Text,
        entity_id -> BigInt,
        program_id -> Nullable<BigInt>,
        changed_fields -> Text,
        detail -> Nullable<Text>,
    }
}

diesel::table! {
    attendance (id) {
        id -> BigInt,
        session_id -> BigInt,
        patient_id -> BigInt,
        status -> Text,
        note -> Nullable<Text>,
        recorded_by -> BigInt,
        recorded_at -> Timestamp,
        updated_at -> Timestamp,
        cohort_id -> BigInt,
    }
}

diesel::table! {
    follow_ups (id) {
        id -> BigInt,
        cohort_id -> BigInt,
        patient_id -> BigInt,
        kind -> Text,
        status -> Text,
        streak_start_session_id -> BigInt,
        consecutive_absences -> Integer,
        opened_at -> Timestamp,
        escalated_at -> Nullable<Timestamp>,
        acknowledged_at -> Nullable<Timestamp>,
        acknowledged_by -> Nullable<BigInt>,
        note -> Nullable<Text>,
    }
}

diesel::table! {
    peer_invitations (id) {
        id -> BigInt,
        patient_id -> BigInt,
        cohort_id -> BigInt,
        status -> Text,
        circle_id -> Nullable<BigInt>,
        created_at -> Timestamp,
        responded_at -> Nullable<Timestamp>,
    }
}

diesel::joinable!(user_programs -> users (user_id));
diesel::joinable!(user_programs -> programs (program_id));
diesel::joinable!(api_tokens -> users (user_id));

diesel::table! {
    facilitators (id) {
        id -> BigInt,
        name -> Text,
        email -> Text,
        timezone -> Text,
        credentials -> Text,
        modalities -> Text,
        licence_expires_on -> Nullable<Date>,
        availability -> Text,
        max_active_cohorts -> Integer,
        active -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    /// The programs a facilitator serves: a lead sees and staffs only these.
    facilitator_programs (facilitator_id, program_id) {
        facilitator_id -> BigInt,
        program_id -> BigInt,
    }
}

diesel::joinable!(facilitator_programs -> facilitators (facilitator_id));
diesel::joinable!(facilitator_programs -> programs (program_id));

diesel::table! {
    patients (id) {
        id -> BigInt,
        program_id -> BigInt,
        name -> Text,
        email -> Text,
        timezone -> Nullable<Text>,
        email_consent -> Bool,
        consent_changed_at -> Nullable<Timestamp>,
        status -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    consent_events (id) {
        id -> BigInt,
        patient_id -> BigInt,
        email_consent -> Bool,
        source -> Text,
        at -> Timestamp,
    }
}

diesel::table! {
    dosings (id) {
        id -> BigInt,
        patient_id -> BigInt,
        dosed_at -> Timestamp,
        utc_offset_minutes -> Integer,
        modality -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    exclusions (id) {
        id -> BigInt,
        program_id -> BigInt,
        patient_id -> BigInt,
        other_patient_id -> Nullable<BigInt>,
        facilitator_id -> Nullable<BigInt>,
        note -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    cohorts (id) {
        id -> BigInt,
        program_id -> BigInt,
        kind -> Text,
        modality -> Text,
        status -> Text,
        venue -> Nullable<Text>,
        join_url -> Nullable<Text>,
        staffing_gaps -> Text,
        override_reason -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    cohort_members (id) {
        id -> BigInt,
        cohort_id -> BigInt,
        patient_id -> BigInt,
        status -> Text,
        joined_at -> Timestamp,
        left_at -> Nullable<Timestamp>,
        leave_reason -> Nullable<Text>,
    }
}

diesel::table! {
    cohort_facilitators (cohort_id, facilitator_id) {
        cohort_id -> BigInt,
        facilitator_id -> BigInt,
        role -> Text,
        assigned_at -> Timestamp,
    }
}

diesel::table! {
    sessions (id) {
        id -> BigInt,
        cohort_id -> BigInt,
        seq -> Integer,
        starts_at -> Timestamp,
        duration_minutes -> Integer,
        status -> Text,
        ics_sequence -> Integer,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::joinable!(patients -> programs (program_id));
diesel::joinable!(consent_events -> patients (patient_id));
diesel::joinable!(dosings -> patients (patient_id));
diesel::joinable!(cohorts -> programs (program_id));
diesel::joinable!(cohort_members -> cohorts (cohort_id));
diesel::joinable!(cohort_members -> patients (patient_id));
diesel::joinable!(cohort_facilitators -> cohorts (cohort_id));
diesel::joinable!(cohort_facilitators -> facilitators (facilitator_id));
diesel::joinable!(sessions -> cohorts (cohort_id));
diesel::joinable!(attendance -> sessions (session_id));
diesel::joinable!(follow_ups -> cohorts (cohort_id));

diesel::allow_tables_to_appear_in_same_query!(
    programs,
    users,
    user_programs,
    api_tokens,
    audit_log,
    patients,
    consent_events,
    dosings,
    exclusions,
    facilitators,
    facilitator_programs,
    cohorts,
    cohort_members,
    cohort_facilitators,
    sessions,
    attendance,
    follow_ups,
    peer_invitations,
);

diesel::table! {
    outbox (id) {
        id -> BigInt,
        kind -> Text,
        entity_type -> Text,
        entity_id -> BigInt,
        recipient_type -> Text,
        recipient_id -> BigInt,
        offset_hours -> Integer,
        revision -> Integer,
        program_id -> BigInt,
        payload -> Text,
        status -> Text,
        due_at -> Timestamp,
        next_attempt_at -> Timestamp,
        attempts -> Integer,
        last_error -> Nullable<Text>,
        message_id -> Text,
        claimed_by -> Nullable<Text>,
        claimed_at -> Nullable<Timestamp>,
        sent_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    rsvps (session_id, patient_id) {
        session_id -> BigInt,
        patient_id -> BigInt,
        response -> Text,
        at -> Timestamp,
    }
}

diesel::allow_tables_to_appear_in_same_query!(rsvps, sessions);
