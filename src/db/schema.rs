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

diesel::joinable!(user_programs -> users (user_id));
diesel::joinable!(user_programs -> programs (program_id));
diesel::joinable!(api_tokens -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    programs,
    users,
    user_programs,
    api_tokens,
    audit_log
);
