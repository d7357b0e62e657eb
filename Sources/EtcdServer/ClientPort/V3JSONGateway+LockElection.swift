import EtcdAPI

extension V3JSONGateway {
    /// The `v3lockpb` and `v3electionpb` paths of etcd 3.4's gateway.
    static var lockAndElectionRoutes: [String: Route] {
        [
            "lock/lock": route("/v3lockpb.Lock/Lock", V3lockpb_LockRequest.self, V3lockpb_LockResponse.self),
            "lock/unlock": route("/v3lockpb.Lock/Unlock", V3lockpb_UnlockRequest.self, V3lockpb_UnlockResponse.self),
            "election/campaign": route(
                "/v3electionpb.Election/Campaign", V3electionpb_CampaignRequest.self, V3electionpb_CampaignResponse.self),
            "election/proclaim": route(
                "/v3electionpb.Election/Proclaim", V3electionpb_ProclaimRequest.self, V3electionpb_ProclaimResponse.self),
            "election/leader": route(
                "/v3electionpb.Election/Leader", V3electionpb_LeaderRequest.self, V3electionpb_LeaderResponse.self),
            "election/observe": route(
                "/v3electionpb.Election/Observe", V3electionpb_LeaderRequest.self, V3electionpb_LeaderResponse.self,
                streams: true, outlivesBody: true),
            "election/resign": route(
                "/v3electionpb.Election/Resign", V3electionpb_ResignRequest.self, V3electionpb_ResignResponse.self),
        ]
    }
}
