/// A parsed systemd unit file (systemd.syntax(7)): sections of ordered assignments.
///
/// Repeated keys are kept in order, so list settings (`ExecStartPre=`, `Environment=`)
/// and drop-in overrides keep their meaning: ``values(_:in:)`` applies systemd's
/// "an empty assignment resets the list" rule, ``value(_:in:)`` returns the last
/// assignment. Comments and blank lines are not part of the model.
public struct UnitFile: Sendable, Hashable {
    /// One `[Name]` section. A name may occur more than once in a file; systemd
    /// treats the occurrences as one section, and so do the accessors.
    public struct Section: Sendable, Hashable {
        public var name: String
        public var entries: [Entry]
        /// Where the header was (0 for sections built in code).
        public var line: Int

        public init(name: String, entries: [Entry] = [], line: Int = 0) {
            self.name = name
            self.entries = entries
            self.line = line
        }
    }

    /// One `Key=Value` assignment, whitespace around key and value removed,
    /// continuation lines joined.
    public struct Entry: Sendable, Hashable {
        public var key: String
        public var value: String
        /// Where the assignment started (0 for entries built in code).
        public var line: Int

        public init(key: String, value: String, line: Int = 0) {
            self.key = key
            self.value = value
            self.line = line
        }
    }

    public var sections: [Section]

    public init(sections: [Section] = []) { self.sections = sections }

    /// Every assignment of `key` in `section`, in file order, without list semantics.
    public func assignments(_ key: String, in section: String) -> [Entry] {
        sections.lazy.filter { $0.name == section }.flatMap { $0.entries.filter { $0.key == key } }
    }

    /// The effective value of a single-valued setting: the last assignment wins.
    /// An empty last assignment yields `""` (systemd's "reset to default").
    public func value(_ key: String, in section: String) -> String? {
        assignments(key, in: section).last?.value
    }

    /// The effective list of a list setting: assignments in order, an empty assignment
    /// clears everything before it.
    public func values(_ key: String, in section: String) -> [String] {
        var result: [String] = []
        for entry in assignments(key, in: section) {
            if entry.value.isEmpty { result.removeAll() } else { result.append(entry.value) }
        }
        return result
    }

    /// Section names in first-appearance order, each once.
    public var sectionNames: [String] {
        var seen = Set<String>()
        return sections.map(\.name).filter { seen.insert($0).inserted }
    }

    /// Appends an assignment to the last section named `section`, creating it if needed.
    public mutating func append(_ key: String, _ value: String, in section: String) {
        if let index = sections.lastIndex(where: { $0.name == section }) {
            sections[index].entries.append(Entry(key: key, value: value))
        } else {
            sections.append(Section(name: section, entries: [Entry(key: key, value: value)]))
        }
    }

    /// This file with `dropIns` applied in order, as systemd merges `name.d/*.conf`:
    /// each drop-in's assignments are added after the unit's own, so later wins for
    /// single values and an empty assignment resets a list.
    public func merging(_ dropIns: [UnitFile]) -> UnitFile {
        var merged = self
        for dropIn in dropIns {
            for section in dropIn.sections {
                if let index = merged.sections.lastIndex(where: { $0.name == section.name }) {
                    merged.sections[index].entries.append(contentsOf: section.entries)
                } else {
                    merged.sections.append(section)
                }
            }
        }
        return merged
    }

    /// The same content with positions cleared; for comparing models from different sources.
    public var withoutPositions: UnitFile {
        UnitFile(
            sections: sections.map { section in
                Section(name: section.name, entries: section.entries.map { Entry(key: $0.key, value: $0.value) })
            })
    }
}
