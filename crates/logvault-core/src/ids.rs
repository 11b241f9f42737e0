//! Azure-style resource ids:
//! `/subscriptions/S/resourceGroups/G/providers/Microsoft.OperationalInsights/clusters/C`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::CoreError;

/// The provider namespace of clusters and workspaces.
pub const OPERATIONAL_INSIGHTS: &str = "Microsoft.OperationalInsights";
/// The provider namespace of user-assigned identities.
pub const MANAGED_IDENTITY: &str = "Microsoft.ManagedIdentity";

/// A parsed resource id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ResourceId {
    /// The subscription.
    pub subscription: String,
    /// The resource group.
    pub resource_group: String,
    /// The provider namespace, e.g. `Microsoft.OperationalInsights`.
    pub provider: String,
    /// The resource type, e.g. `clusters` or `workspaces`.
    pub resource_type: String,
    /// The resource's name.
    pub name: String,
}

impl ResourceId {
    /// A Log Analytics resource id (`clusters` or `workspaces`).
    pub fn operational_insights(
        subscription: &str,
        resource_group: &str,
        resource_type: &str,
        name: &str,
    ) -> Self {
        Self {
            subscription: subscription.to_owned(),
            resource_group: resource_group.to_owned(),
            provider: OPERATIONAL_INSIGHTS.to_owned(),
            resource_type: resource_type.to_owned(),
            name: name.to_owned(),
        }
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "/subscriptions/{}/resourceGroups/{}/providers/{}/{}/{}",
            self.subscription, self.resource_group, self.provider, self.resource_type, self.name
        )
    }
}

impl FromStr for ResourceId {
    type Err = CoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let fail = |reason: &str| CoreError::InvalidResourceId {
            id: s.to_owned(),
            reason: reason.to_owned(),
        };
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            ["", subs, sub, rgs, rg, providers, provider, rtype, name]
                if subs.eq_ignore_ascii_case("subscriptions")
                    && rgs.eq_ignore_ascii_case("resourceGroups")
                    && providers.eq_ignore_ascii_case("providers") =>
            {
                if [sub, rg, provider, rtype, name]
                    .iter()
                    .any(|p| p.is_empty())
                {
                    return Err(fail("empty segment"));
                }
                Ok(Self {
                    subscription: (*sub).to_owned(),
                    resource_group: (*rg).to_owned(),
                    provider: (*provider).to_owned(),
                    resource_type: (*rtype).to_owned(),
                    name: (*name).to_owned(),
                })
            }
            _ => Err(fail(
                "expected /subscriptions/S/resourceGroups/G/providers/P/TYPE/NAME",
            )),
        }
    }
}

impl TryFrom<String> for ResourceId {
    type Error = CoreError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<ResourceId> for String {
    fn from(id: ResourceId) -> Self {
        id.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_text_and_json() {
        let id = ResourceId::operational_insights("sub1", "rg1", "clusters", "c1");
        let text = id.to_string();
        assert_eq!(
            text,
            "/subscriptions/sub1/resourceGroups/rg1/providers/Microsoft.OperationalInsights/clusters/c1"
        );
        assert_eq!(text.parse::<ResourceId>().unwrap(), id);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(serde_json::from_str::<ResourceId>(&json).unwrap(), id);
    }

    #[test]
    fn refuses_malformed_ids() {
        for bad in [
            "",
            "/subscriptions/s",
            "/subscriptions//resourceGroups/g/providers/p/t/n",
            "subscriptions/s/resourceGroups/g/providers/p/t/n",
        ] {
            assert!(bad.parse::<ResourceId>().is_err(), "{bad}");
        }
    }
}
