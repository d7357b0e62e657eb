import CLI
import UnitFile

/// `systemd-escape`: the command-line face of ``UnitNameEscaping``, with systemd 252's
/// options, messages and exit codes.
enum SystemdEscapeCommand {
    static let options = OptionParser([
        OptionSpec(long: "help", short: "h"),
        OptionSpec(long: "version"),
        OptionSpec(long: "suffix", argument: .required),
        OptionSpec(long: "template", argument: .required),
        OptionSpec(long: "instance"),
        OptionSpec(long: "unescape", short: "u"),
        OptionSpec(long: "mangle", short: "m"),
        OptionSpec(long: "path", short: "p"),
    ])

    static let help = """
        systemd-escape [OPTIONS...] [NAME...]

        Escape strings for usage in systemd unit names.

          -h --help               Show this help
             --version            Show package version
             --suffix=SUFFIX      Unit suffix to append to escaped strings
             --template=TEMPLATE  Insert strings as instance into template
             --instance           With --unescape, show just the instance part
          -u --unescape           Unescape strings
          -m --mangle             Mangle strings
          -p --path               When escaping/unescaping assume the string is a path

        See the systemd-escape(1) man page for details.

        """

    enum Action { case escape, unescape, mangle }

    struct Failure: Error {
        var message: String
        init(_ message: String) { self.message = message }
    }

    @Sendable static func main(_ argv: [String], io: StandardStreams) async -> Int32 {
        let parsed: ParsedOptions
        do {
            parsed = try options.parse(Array(argv.dropFirst()))
        } catch {
            io.error.line("\(argv.first ?? "systemd-escape"): \(error.message)")
            return ExitStatus.failure
        }
        do {
            return try run(parsed, io: io)
        } catch {
            io.error.line(error.message)
            return ExitStatus.failure
        }
    }

    static func run(_ parsed: ParsedOptions, io: StandardStreams) throws(Failure) -> Int32 {
        var action = Action.escape
        var suffix: UnitType? = nil
        var template: UnitName? = nil
        var path = false
        var instance = false
        // Options act in command-line order, like getopt's loop: validation errors surface
        // at the offending option, and a later action overrides an earlier one.
        for occurrence in parsed.occurrences {
            switch occurrence.key {
            case "help":
                io.output.write(help)
                return ExitStatus.success
            case "version":
                io.output.line("coreos \(MultiCall.version) (systemd-escape compatible, systemd 252 semantics)")
                return ExitStatus.success
            case "suffix":
                let text = occurrence.value ?? ""
                guard let type = UnitType(rawValue: text) else {
                    throw Failure("Invalid unit suffix type \"\(text)\".")
                }
                suffix = type
            case "template":
                let text = occurrence.value ?? ""
                guard let name = try? UnitName(text), name.isTemplate else {
                    throw Failure("Template name \(text) is not valid.")
                }
                template = name
            case "unescape": action = .unescape
            case "mangle": action = .mangle
            case "path": path = true
            case "instance": instance = true
            default: break
            }
        }
        if parsed.operands.isEmpty { throw Failure("Not enough arguments.") }
        if template != nil && suffix != nil { throw Failure("--suffix= and --template= may not be combined.") }
        if (template != nil || suffix != nil) && action == .mangle {
            throw Failure("--suffix= and --template= are not compatible with --mangle.")
        }
        if suffix != nil && action == .unescape { throw Failure("--suffix is not compatible with --unescape.") }
        if path && action == .mangle { throw Failure("--path may not be combined with --mangle.") }
        if instance && action != .unescape { throw Failure("--instance must be used in conjunction with --unescape.") }
        if instance && template != nil { throw Failure("--instance may not be combined with --template.") }

        // Results are written one by one, as systemd does, so output before a failing
        // operand stays visible.
        for (index, operand) in parsed.operands.enumerated() {
            let result: String
            switch action {
            case .escape:
                var escaped = path ? try escapePath(operand, io: io) : UnitNameEscaping.escape(operand)
                if let suffix {
                    escaped += "." + suffix.rawValue
                } else if let template {
                    do { escaped = try template.instantiated(with: escaped).name } catch {
                        throw Failure("Failed to replace instance: Invalid argument")
                    }
                }
                result = escaped
            case .unescape:
                result = try unescape(operand, path: path, template: template, instanceOnly: instance)
            case .mangle:
                do { result = try UnitNameEscaping.mangle(operand) } catch {
                    throw Failure("Failed to mangle name: Invalid argument")
                }
            }
            io.output.write(index == 0 ? result : " " + result)
        }
        io.output.write("\n")
        return ExitStatus.success
    }

    static func escapePath(_ operand: String, io: StandardStreams) throws(Failure) -> String {
        let escaped: String
        do {
            escaped = try UnitNameEscaping.escapePath(operand)
        } catch {
            if !PathChecks.isValid(operand) {
                throw Failure("Input '\(operand)' is not a valid file system path, failed to escape.")
            }
            if !PathChecks.isAbsolute(operand) {
                throw Failure("Input '\(operand)' is not an absolute file system path, failed to escape.")
            }
            throw Failure("Input '\(operand)' is not a normalized file system path, failed to escape.")
        }
        // The wording (including systemd 252's "going be") is kept so scripts that match it keep working.
        if !PathChecks.isValid(operand) {
            io.error.line(
                "Input '\(operand)' is not a valid file system path, escaping is likely not going be reversible.")
        } else if !PathChecks.isAbsolute(operand) {
            io.error.line(
                "Input '\(operand)' is not an absolute file system path, escaping is likely not going to be reversible."
            )
        }
        return escaped
    }

    static func unescape(_ operand: String, path: Bool, template: UnitName?, instanceOnly: Bool) throws(Failure)
        -> String
    {
        var name = operand
        if template != nil || instanceOnly {
            guard let unit = try? UnitName(operand) else {
                throw Failure("Failed to extract instance: Invalid argument")
            }
            guard let instance = unit.instance, !instance.isEmpty else {
                throw Failure("Unit \(operand) is missing the instance name.")
            }
            if let template, let own = unit.template, own != template {
                throw Failure("Unit \(operand) template \(own) does not match specified template \(template).")
            }
            name = instance
        }
        do {
            return path ? try UnitNameEscaping.unescapePath(name) : try UnitNameEscaping.unescape(name)
        } catch {
            throw Failure("Failed to unescape string: Invalid argument")
        }
    }
}
