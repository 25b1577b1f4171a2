//! The registry of shared executions: which subscribers share one (`ShareKey`), the members
//! of each [`Group`] and the frame variants they need, and joining and leaving. The last member
//! out, or the end of the execution, retires a group; the execution itself runs in
//! `execution`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_graphql::Request;
use axum::extract::ws::Utf8Bytes;
use tokio::sync::watch;
use tokio::task::AbortHandle;

use super::execution::Replay;
use super::frame::{Variant, Wire};
use super::{Analysis, Outbox, Policy, ReplayOnly};
use crate::auth::Principal;
use crate::graphql::ScorelineSchema;
use crate::metrics::Metrics;

/// What makes subscribers share an execution.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct ShareKey {
    query: String,
    operation_name: Option<String>,
    /// Canonical text of the variables, resume variable removed.
    variables: String,
    /// The role the operation runs as (subscriptions are public, but resolvers may look).
    scope: Option<String>,
}

/// A subscriber as a group sees it.
pub struct MemberSpec {
    pub outbox: Arc<Outbox>,
    pub protocol: Wire,
    pub id: String,
    pub op: u64,
}

pub(super) enum MemberState {
    /// Served from the shared stream. `after` is the position its replay reached: the shared
    /// execution learns of changes from the broker, later than a replay reads them from the
    /// store, so frames not beyond it are skipped until the shared stream has caught up.
    Live { after: u64 },
    /// The replay is running: shared frames wait here with their positions.
    Replaying {
        buffered: Vec<(u64, Utf8Bytes)>,
        overflowed: bool,
    },
}

pub(super) struct Member {
    pub(super) spec: MemberSpec,
    pub(super) variant: usize,
    pub(super) state: MemberState,
}

#[derive(Default)]
pub(super) struct Members {
    pub(super) slots: Vec<Option<Member>>,
    free: Vec<usize>,
    pub(super) len: usize,
    pub(super) variants: Vec<Option<(Variant, usize)>>,
    variant_index: HashMap<Variant, usize>,
    /// The execution ended (or everyone left): joiners start a new group.
    pub(super) ended: bool,
}

impl Members {
    fn variant(&mut self, protocol: Wire, id: &str) -> usize {
        let variant = Variant::new(protocol, id);
        if let Some(&i) = self.variant_index.get(&variant) {
            if let Some((_, n)) = &mut self.variants[i] {
                *n += 1;
            }
            return i;
        }
        let i = match self.variants.iter().position(Option::is_none) {
            Some(i) => i,
            None => {
                self.variants.push(None);
                self.variants.len() - 1
            }
        };
        self.variants[i] = Some((variant.clone(), 1));
        self.variant_index.insert(variant, i);
        i
    }

    fn release_variant(&mut self, i: usize) {
        if let Some((variant, n)) = &mut self.variants[i] {
            *n -= 1;
            if *n == 0 {
                self.variant_index.remove(variant);
                self.variants[i] = None;
            }
        }
    }

    fn insert(&mut self, spec: MemberSpec, state: MemberState) -> usize {
        let variant = self.variant(spec.protocol, &spec.id);
        let member = Member {
            spec,
            variant,
            state,
        };
        self.len += 1;
        match self.free.pop() {
            Some(slot) => {
                self.slots[slot] = Some(member);
                slot
            }
            None => {
                self.slots.push(Some(member));
                self.slots.len() - 1
            }
        }
    }

    pub(super) fn remove(&mut self, slot: usize, op: u64) -> Option<Member> {
        let member = self.slots.get_mut(slot)?;
        if member.as_ref().is_none_or(|m| m.spec.op != op) {
            return None;
        }
        let member = member.take()?;
        self.free.push(slot);
        self.len -= 1;
        self.release_variant(member.variant);
        Some(member)
    }
}

/// One shared execution and its subscribers.
pub struct Group {
    key: ShareKey,
    pub(super) policy: Policy,
    members: Mutex<Members>,
    leader: Mutex<Option<AbortHandle>>,
    /// True once the shared execution has started (subscribed and read the store); closed
    /// when it ends without starting. Replays wait for it.
    pub(super) started: watch::Receiver<bool>,
}

impl Group {
    pub(super) fn members(&self) -> MutexGuard<'_, Members> {
        self.members.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn leader(&self) -> MutexGuard<'_, Option<AbortHandle>> {
        self.leader.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a member unless the execution already ended.
    fn try_insert(
        &self,
        spec: MemberSpec,
        state: MemberState,
    ) -> Result<usize, (MemberSpec, MemberState)> {
        let mut members = self.members();
        if members.ended {
            return Err((spec, state));
        }
        Ok(members.insert(spec, state))
    }
}

/// A subscriber's place in a group, to leave it.
pub struct Membership {
    group: Arc<Group>,
    slot: usize,
    op: u64,
}

/// The registry of shared executions.
pub struct Fanout {
    pub(super) schema: ScorelineSchema,
    pub(super) metrics: Arc<Metrics>,
    groups: Mutex<HashMap<ShareKey, Arc<Group>>>,
}

impl Fanout {
    pub fn new(schema: ScorelineSchema, metrics: Arc<Metrics>) -> Self {
        Self {
            schema,
            metrics,
            groups: Mutex::new(HashMap::new()),
        }
    }

    fn groups(&self) -> MutexGuard<'_, HashMap<ShareKey, Arc<Group>>> {
        self.groups.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Shared executions registered now.
    #[cfg(test)]
    pub(super) fn group_count(&self) -> usize {
        self.groups().len()
    }

    /// Joins (or starts) the shared execution of `request`, which `analysis` found shareable.
    /// With a resume value, the subscriber is served its replay first and joins live after.
    pub fn join(
        self: &Arc<Self>,
        request: Request,
        analysis: &Analysis,
        principal: Option<Principal>,
        spec: MemberSpec,
    ) -> Membership {
        let mut shared_request = Request::new(request.query.clone());
        shared_request.operation_name = request.operation_name.clone();
        shared_request.variables = request.variables.clone();
        if let Some((var, _)) = &analysis.resume {
            shared_request.variables.remove(var);
        }
        let mut roles: Vec<String> = principal
            .iter()
            .flat_map(|p| p.roles.iter().map(|r| format!("{r:?}")))
            .collect();
        roles.sort();
        let key = ShareKey {
            query: request.query.clone(),
            operation_name: request.operation_name.clone(),
            variables: shared_request.variables.to_string(),
            scope: principal.as_ref().map(|_| roles.join(",")),
        };
        let since = analysis.since();
        let state = match since {
            Some(_) => MemberState::Replaying {
                buffered: Vec::new(),
                overflowed: false,
            },
            None => MemberState::Live { after: 0 },
        };
        let op = spec.op;
        let replay_parts =
            since.map(|since| (since, spec.outbox.clone(), spec.protocol, spec.id.clone()));

        let (group, slot) = {
            let mut groups = self.groups();
            let existing = groups.get(&key).cloned();
            let attempt = match existing {
                Some(group) => group.try_insert(spec, state).map(|slot| (group, slot)),
                None => Err((spec, state)),
            };
            match attempt {
                Ok(found) => found,
                Err(pending) => {
                    let (started, started_rx) = watch::channel(false);
                    let group = Arc::new(Group {
                        key: key.clone(),
                        policy: analysis.policy,
                        members: Mutex::new(Members::default()),
                        leader: Mutex::new(None),
                        started: started_rx,
                    });
                    let slot = group.members().insert(pending.0, pending.1);
                    groups.insert(key, group.clone());
                    Metrics::add(&self.metrics.shared_executions, 1);
                    if let Some(p) = &principal {
                        shared_request = shared_request.data(p.clone());
                    }
                    let task =
                        tokio::spawn(self.clone().lead(group.clone(), shared_request, started));
                    *group.leader() = Some(task.abort_handle());
                    (group, slot)
                }
            }
        };

        if let Some((since, outbox, protocol, id)) = replay_parts {
            let mut request = request.data(ReplayOnly);
            if let Some(p) = principal {
                request = request.data(p);
            }
            let replay = Replay {
                group: group.clone(),
                slot,
                since,
                outbox,
                protocol,
                id,
                op,
            };
            tokio::spawn(self.clone().replay(replay, request));
        }
        Membership { group, slot, op }
    }

    /// Leaves a group; the last one out stops its execution.
    pub fn leave(&self, membership: Membership) {
        let Membership { group, slot, op } = membership;
        let emptied = {
            let mut members = group.members();
            if members.remove(slot, op).is_none() && !members.ended {
                // Not this operation's slot any more: nothing to do.
                return;
            }
            if members.len == 0 && !members.ended {
                members.ended = true;
                true
            } else {
                false
            }
        };
        if emptied {
            self.retire(&group, true);
        }
    }

    /// Takes an ended group out of the registry and stops its execution (unless it is the
    /// execution itself that ended).
    pub(super) fn retire(&self, group: &Arc<Group>, abort: bool) {
        {
            let mut groups = self.groups();
            if groups
                .get(&group.key)
                .is_some_and(|g| Arc::ptr_eq(g, group))
            {
                groups.remove(&group.key);
            }
        }
        if let Some(leader) = group.leader().take() {
            Metrics::add(&self.metrics.shared_executions, -1);
            if abort {
                leader.abort();
            }
        }
    }
}
