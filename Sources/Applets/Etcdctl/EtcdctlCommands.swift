/// Every etcdctl command this build implements.
enum EtcdctlCommands {
    static var all: [EtcdctlCommandSpec] {
        EtcdctlKVCommands.all + EtcdctlClusterCommands.all + EtcdctlStreamCommands.all + EtcdctlRecipeCommands.all
            + EtcdctlAuthCommands.all + EtcdctlSnapshotCommands.all
            + EtcdctlMirrorCommand.all
    }
}
