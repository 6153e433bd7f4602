#pragma once

#include <string>

#include "core/tokens.h"

namespace fleettwin::api {

// The API's tokens and roles are core's (shared with the schema registry's registry.tokens).
using core::Role;
using core::role_from_string;
using core::to_string;
using core::TokenError;
using core::TokenTable;

/// 32 random hex characters from /dev/urandom: a token nobody can guess.
std::string random_token();

/// The admin token kept in `<data_dir>/api-token`, created (random_token(), file mode 0600) when missing:
/// `up` uses it when no token is configured, so the dashboard URL it prints stays valid across restarts on
/// the same data dir.
std::string load_or_create_admin_token(const std::string& data_dir);

}  // namespace fleettwin::api
