// The multi-call entry point. All logic lives in the Applets module; see AppletTable.
import Applets
import Glibc

exit(await MultiCall.run(CommandLine.arguments))
