//! The PD server: members (this one PD, its own leader), the TSO stream, regions and the store.

use std::sync::{Arc, PoisonError};

use futures_util::StreamExt;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status, Streaming};

use crate::conn::ConnId;
use crate::double::{Gate, Shared};
use crate::faults::{Fault, Rpc};
use crate::proto::metapb;
use crate::proto::pdpb::{self, pd_server::Pd};
use crate::regions::STORE_ID;

#[derive(Debug)]
pub(crate) struct PdService {
    shared: Arc<Shared>,
}

impl PdService {
    pub fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// The header of an answer, as the gate wants it.
    fn header(&self, gate: Gate) -> Option<pdpb::ResponseHeader> {
        let error = (gate == Gate::PdError).then(|| pdpb::Error {
            r#type: pdpb::ErrorType::Unknown.into(),
            message: "tikv-double: injected PD error".to_owned(),
        });
        (gate != Gate::MissingHeader).then(|| pdpb::ResponseHeader {
            cluster_id: self.shared.cluster_id,
            error,
        })
    }

    /// A header error (the request could not be served) that still honours a header fault.
    fn header_error(
        &self,
        gate: Gate,
        kind: pdpb::ErrorType,
        message: String,
    ) -> Option<pdpb::ResponseHeader> {
        let mut header = self.header(gate)?;
        header.error = Some(pdpb::Error {
            r#type: kind.into(),
            message,
        });
        Some(header)
    }

    /// Pass the gate; a `DropAfterApply` fault drops the connection before anything happens.
    async fn enter(&self, rpc: Rpc, conn: Option<ConnId>) -> Result<Gate, Status> {
        let gate = self.shared.gate(rpc).await?;
        if gate == Gate::DropAfterApply {
            return self
                .shared
                .drop_connection(conn, &self.shared.pd_conns)
                .await;
        }
        Ok(gate)
    }

    fn store(&self) -> metapb::Store {
        metapb::Store {
            id: STORE_ID,
            address: self.shared.tikv_addr.clone(),
            state: metapb::StoreState::Up.into(),
            version: "7.5.0".to_owned(),
            ..Default::default()
        }
    }

    fn region_answer(
        &self,
        gate: Gate,
        region: Option<&crate::regions::Region>,
    ) -> pdpb::GetRegionResponse {
        match region {
            Some(r) => pdpb::GetRegionResponse {
                header: self.header(gate),
                region: Some(r.to_pd()),
                leader: Some(r.peer()),
                ..Default::default()
            },
            None => pdpb::GetRegionResponse {
                header: self.header_error(
                    gate,
                    pdpb::ErrorType::RegionNotFound,
                    "region not found".to_owned(),
                ),
                ..Default::default()
            },
        }
    }
}

/// The connection a request came on.
fn conn_of<T>(request: &Request<T>) -> Option<ConnId> {
    request.extensions().get::<ConnId>().copied()
}

#[tonic::async_trait]
impl Pd for PdService {
    async fn get_members(
        &self,
        request: Request<pdpb::GetMembersRequest>,
    ) -> Result<Response<pdpb::GetMembersResponse>, Status> {
        let gate = self.enter(Rpc::GetMembers, conn_of(&request)).await?;
        let me = pdpb::Member {
            name: "pd-double".to_owned(),
            member_id: 1,
            peer_urls: vec![self.shared.pd_url.clone()],
            client_urls: vec![self.shared.pd_url.clone()],
            ..Default::default()
        };
        let leader = (gate != Gate::NoLeader).then(|| me.clone());
        Ok(Response::new(pdpb::GetMembersResponse {
            header: self.header(gate),
            members: vec![me],
            etcd_leader: leader.clone(),
            leader,
            ..Default::default()
        }))
    }

    async fn tso(
        &self,
        request: Request<Streaming<pdpb::TsoRequest>>,
    ) -> Result<Response<BoxStream<pdpb::TsoResponse>>, Status> {
        // Faults at the opening (unavailable, delay, hang, drop); each answer has its own.
        self.enter(Rpc::Tso, conn_of(&request)).await?;
        let shared = self.shared.clone();
        let cluster_id = shared.cluster_id;
        let answers = request.into_inner().then(move |req| {
            let shared = shared.clone();
            async move {
                let req = req?;
                let fault = shared.faults.on_message(Rpc::Tso);
                let header = match fault {
                    Some(Fault::MissingHeader) => None,
                    _ => Some(pdpb::ResponseHeader {
                        cluster_id,
                        error: None,
                    }),
                };
                shared.apply(Rpc::Tso, fault).await?;
                let (physical, logical) = shared.tso.next(req.count);
                Ok(pdpb::TsoResponse {
                    header,
                    count: req.count.max(1),
                    timestamp: Some(pdpb::Timestamp {
                        physical: i64::try_from(physical).unwrap_or(i64::MAX),
                        logical: i64::try_from(logical).unwrap_or(i64::MAX),
                        suffix_bits: 0,
                    }),
                })
            }
        });
        Ok(Response::new(Box::pin(answers)))
    }

    async fn get_region(
        &self,
        request: Request<pdpb::GetRegionRequest>,
    ) -> Result<Response<pdpb::GetRegionResponse>, Status> {
        let gate = self.enter(Rpc::GetRegion, conn_of(&request)).await?;
        let key = &request.get_ref().region_key;
        Ok(Response::new(self.region_answer(
            gate,
            self.shared.regions.by_encoded_key(key),
        )))
    }

    async fn get_region_by_id(
        &self,
        request: Request<pdpb::GetRegionByIdRequest>,
    ) -> Result<Response<pdpb::GetRegionResponse>, Status> {
        let gate = self.enter(Rpc::GetRegionById, conn_of(&request)).await?;
        let id = request.get_ref().region_id;
        Ok(Response::new(
            self.region_answer(gate, self.shared.regions.by_id(id)),
        ))
    }

    async fn get_store(
        &self,
        request: Request<pdpb::GetStoreRequest>,
    ) -> Result<Response<pdpb::GetStoreResponse>, Status> {
        let gate = self.enter(Rpc::GetStore, conn_of(&request)).await?;
        let id = request.get_ref().store_id;
        Ok(Response::new(if id == STORE_ID {
            pdpb::GetStoreResponse {
                header: self.header(gate),
                store: Some(self.store()),
                ..Default::default()
            }
        } else {
            pdpb::GetStoreResponse {
                header: self.header_error(
                    gate,
                    pdpb::ErrorType::Unknown,
                    format!("invalid store ID {id}, not found"),
                ),
                ..Default::default()
            }
        }))
    }

    async fn get_all_stores(
        &self,
        request: Request<pdpb::GetAllStoresRequest>,
    ) -> Result<Response<pdpb::GetAllStoresResponse>, Status> {
        let gate = self.enter(Rpc::GetAllStores, conn_of(&request)).await?;
        Ok(Response::new(pdpb::GetAllStoresResponse {
            header: self.header(gate),
            stores: vec![self.store()],
        }))
    }

    async fn update_gc_safe_point(
        &self,
        request: Request<pdpb::UpdateGcSafePointRequest>,
    ) -> Result<Response<pdpb::UpdateGcSafePointResponse>, Status> {
        let gate = self
            .enter(Rpc::UpdateGcSafePoint, conn_of(&request))
            .await?;
        let wanted = request.get_ref().safe_point;
        let new_safe_point = {
            let mut safe_point = self
                .shared
                .gc_safe_point
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            // PD never moves the safe point back.
            *safe_point = (*safe_point).max(wanted);
            *safe_point
        };
        Ok(Response::new(pdpb::UpdateGcSafePointResponse {
            header: self.header(gate),
            new_safe_point,
        }))
    }
}
