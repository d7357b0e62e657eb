import CLI

/// etcdctl's usage text: cobra's template as etcdctl 3.4 customises it, aligned by Go's
/// tabwriter (tab padding, tab width 8, padding 1).
enum EtcdctlHelp {
    static func usage(for command: EtcdctlCommandSpec) -> String {
        let name = command.path.joined(separator: " ")
        var text = "NAME:\n\t\(name) - \(command.short)\n\nUSAGE:\n\t"
        text += "etcdctl " + (command.path.dropLast() + [command.use]).joined(separator: " ") + " [flags]\n"
        if let description = command.description {
            text += "\nDESCRIPTION:\n"
            for line in description.split(separator: "\n", omittingEmptySubsequences: false) {
                text += "\t\(line)\n"
            }
        }
        let helpFlag = PFlag("help", shorthand: "h", .bool, default: "false", "help for \(command.path.last ?? "")")
        text += "\nOPTIONS:\n" + flagLines((command.flags + [helpFlag]).sorted { $0.name < $1.name })
        text += "\nGLOBAL OPTIONS:\n" + flagLines(EtcdctlGlobalOptions.flags.sorted { $0.name < $1.name })
        return tabAlign(text)
    }

    /// `etcdctl --help`: the command list of this build (etcdctl 3.4's layout).
    static func rootUsage() -> String {
        var text = "NAME:\n\tetcdctl - A simple command line client for etcd3.\n\nUSAGE:\n\tetcdctl [flags]\n\n"
        text += "VERSION:\n\t3.4.23\n\nAPI VERSION:\n\t3.4\n\n\nCOMMANDS:\n"
        var rows = EtcdctlCommands.all.map { ($0.path.joined(separator: " "), $0.short) }
        rows.append(("help", "Help about any command"))
        for (path, short) in rows.sorted(by: { $0.0 < $1.0 }) { text += "\t\(path)\t\(short)\n" }
        let helpFlag = PFlag("help", shorthand: "h", .bool, default: "false", "help for etcdctl")
        text += "\nOPTIONS:\n" + flagLines((EtcdctlGlobalOptions.flags + [helpFlag]).sorted { $0.name < $1.name })
        return tabAlign(text) + "\n"
    }

    /// One line per flag in etcdctl's format: `  -w, --write-out="simple"\tusage`.
    static func flagLines(_ flags: [PFlag]) -> String {
        var text = ""
        for flag in flags {
            var line = flag.shorthand.map { "  -\($0), --" } ?? "      --"
            line += flag.name
            switch flag.kind {
            case .bool: line += "[=\(flag.defaultValue)]"
            case .string: line += "=" + goQuote(flag.defaultValue)
            default: line += "=" + flag.defaultValue
            }
            text += line + "\t" + flag.usage + "\n"
        }
        return text
    }

    /// Go's tabwriter with `minwidth 1, tabwidth 8, padding 1, padchar '\t'`, for text
    /// whose lines have at most one tab-terminated cell: consecutive lines with a tab form
    /// a block whose first column is padded with tabs to a common multiple of 8.
    static func tabAlign(_ text: String) -> String {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        var output: [String] = []
        var index = 0
        while index < lines.count {
            guard lines[index].contains("\t") else {
                output.append(String(lines[index]))
                index += 1
                continue
            }
            var end = index
            while end < lines.count && lines[end].contains("\t") { end += 1 }
            // Cells are the tab-terminated parts; the text after the last tab is not aligned.
            let rows = lines[index..<end].map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
            let columns = (rows.map(\.count).max() ?? 1) - 1
            var widths = [Int](repeating: 0, count: columns)
            for row in rows {
                for column in 0..<(row.count - 1) {
                    widths[column] = max(widths[column], row[column].unicodeScalars.count)
                }
            }
            let cellWidths = widths.map { ($0 + 1 + 7) / 8 * 8 }
            for row in rows {
                var line = ""
                for column in 0..<(row.count - 1) {
                    let cell = row[column]
                    line += cell + String(repeating: "\t", count: (cellWidths[column] - cell.unicodeScalars.count + 7) / 8)
                }
                line += row[row.count - 1]
                output.append(line)
            }
            index = end
        }
        return output.joined(separator: "\n")
    }

    /// Go's `%q` / strconv.Quote: printable Unicode kept, `\a \b \f \n \r \t \v \\ \"`,
    /// other controls as `\x..`, `\u....` or `\U........`; invalid UTF-8 bytes as `\x..`.
    static func goQuote(_ text: String) -> String { goQuote(bytes: Array(text.utf8)) }

    static func goQuote(bytes: [UInt8]) -> String {
        var output = "\""
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte < 0x80 {
                switch byte {
                case 0x07: output += "\\a"
                case 0x08: output += "\\b"
                case 0x0C: output += "\\f"
                case 0x0A: output += "\\n"
                case 0x0D: output += "\\r"
                case 0x09: output += "\\t"
                case 0x0B: output += "\\v"
                case 0x5C: output += "\\\\"
                case 0x22: output += "\\\""
                case 0x20...0x7E: output.unicodeScalars.append(Unicode.Scalar(byte))
                default: output += "\\x" + hex2(byte)
                }
                index += 1
                continue
            }
            // Decode one UTF-8 sequence; invalid bytes are escaped one by one.
            var decoder = UTF8()
            var iterator = bytes[index...].prefix(4).makeIterator()
            if case .scalarValue(let scalar) = decoder.decode(&iterator) {
                let length = UTF8.width(scalar)
                if isPrintable(scalar) {
                    output.unicodeScalars.append(scalar)
                } else if scalar.value <= 0xFFFF {
                    output += "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count)
                        + String(scalar.value, radix: 16)
                } else {
                    output += "\\U" + String(repeating: "0", count: 8 - String(scalar.value, radix: 16).count)
                        + String(scalar.value, radix: 16)
                }
                index += length
            } else {
                output += "\\x" + hex2(byte)
                index += 1
            }
        }
        return output + "\""
    }

    private static func hex2(_ byte: UInt8) -> String {
        (byte < 16 ? "0" : "") + String(byte, radix: 16)
    }

    /// An approximation of Go's unicode.IsPrint for non-ASCII: letters, marks, numbers,
    /// punctuation, symbols and the ASCII space.
    private static func isPrintable(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .control, .format, .surrogate, .privateUse, .unassigned, .lineSeparator, .paragraphSeparator,
            .spaceSeparator:
            return false
        default:
            return true
        }
    }
}
