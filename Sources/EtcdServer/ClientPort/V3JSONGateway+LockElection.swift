extension V3JSONGateway {
    /// `v3lockpb` and `v3electionpb` paths; filled in with those services.
    static var lockAndElectionRoutes: [String: Route] { [:] }
}
