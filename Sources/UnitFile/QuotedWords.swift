/// Whitespace-separated words where single or double quotes group (the quotes dropped):
/// how systemd splits `Environment=` and fleet `MachineMetadata=`, and how etcdctl splits
/// a line of commands.
public enum QuotedWords {
    /// The words, and whether a quote was left open at the end.
    public static func split(_ text: String) -> (words: [String], unterminated: Bool) {
        var words: [String] = []
        var current = ""
        var inWord = false
        var quote: Character? = nil
        for character in text {
            if let open = quote {
                if character == open { quote = nil } else { current.append(character) }
            } else if character == "\"" || character == "'" {
                quote = character
                inWord = true
            } else if character == " " || character == "\t" {
                if inWord { words.append(current) }
                current = ""
                inWord = false
            } else {
                current.append(character)
                inWord = true
            }
        }
        if inWord { words.append(current) }
        return (words, quote != nil)
    }
}
