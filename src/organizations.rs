//! Organizations: a name and members with a role. Organization API keys belong to them.

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Organization {
    pub id: crate::ids::OrgId,
    pub name: crate::names::DisplayName,
    pub created_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Owner,
    Member,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Member => "member",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "owner" => Some(Self::Owner),
            "member" => Some(Self::Member),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Member {
    pub user_id: crate::ids::UserId,
    pub username: String,
    pub role: Role,
}
