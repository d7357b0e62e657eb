/// Go's `text/tabwriter` as fleetctl configures it (`minwidth 0, tabwidth 8, padding 1,
/// padchar '\t'`): a column is as wide as its widest cell plus the padding, rounded up to
/// a multiple of the tab width, and each cell is followed by the tabs that reach it; the
/// last cell of a line is not padded. A column is shared by a run of consecutive lines
/// that all have it (Go's column blocks).
public enum GoTabWriter {
    public static func format(_ lines: [[String]], tabWidth: Int = 8, padding: Int = 1) -> String {
        let columns = lines.map { $0.count - 1 }.max() ?? 0
        // widths[row][column]: the padded width of that cell's column block.
        var widths = lines.map { Array(repeating: 0, count: max($0.count - 1, 0)) }
        for column in 0..<max(columns, 0) {
            var row = 0
            while row < lines.count {
                guard lines[row].count - 1 > column else {
                    row += 1
                    continue
                }
                var end = row
                var widest = 0
                while end < lines.count, lines[end].count - 1 > column {
                    widest = max(widest, lines[end][column].unicodeScalars.count)
                    end += 1
                }
                let width = (widest + padding + tabWidth - 1) / tabWidth * tabWidth
                for block in row..<end { widths[block][column] = width }
                row = end
            }
        }
        var output = ""
        for (row, line) in lines.enumerated() {
            for (column, cell) in line.enumerated() {
                output += cell
                if column < line.count - 1 {
                    let tabs = (widths[row][column] - cell.unicodeScalars.count + tabWidth - 1) / tabWidth
                    output += String(repeating: "\t", count: tabs)
                }
            }
            output += "\n"
        }
        return output
    }
}
