//! The model-facing definitions of the `apply_patch` tool, as JSON the
//! client sends in the Responses request's `tools`: a freeform (custom) tool
//! constrained by a Lark grammar of the patch format, and a JSON function
//! tool taking the patch as its `input` string.
//!
//! Owns only the data; choosing which one a model gets is the client's
//! decision, and running a call is the turn's.

use serde_json::{Value, json};

/// The tool name the model calls, in both forms.
pub const TOOL_NAME: &str = "apply_patch";

/// The patch format as a Lark grammar (the Responses API's `grammar` format
/// with `syntax: "lark"`). It describes the canonical form the model should
/// write; the parser accepts a little more (padding, CRLF, a heredoc wrapper).
pub const PATCH_GRAMMAR: &str = r#"// codex-lite apply_patch: one envelope holding one or more file operations.
start: "*** Begin Patch" LF operation+ "*** End Patch" LF?

operation: add_file | delete_file | update_file

// A new file: every content line starts with "+".
add_file: "*** Add File: " PATH LF added_line*
added_line: "+" TEXT? LF

// Removes an existing file; nothing follows the header.
delete_file: "*** Delete File: " PATH LF

// Edits an existing file, optionally renaming it first.
update_file: "*** Update File: " PATH LF rename? section+
rename: "*** Move to: " PATH LF

// "@@" alone, or "@@ " and one line of the file (a function or class
// header) to search for before the section's own lines.
section: section_header section_line+ end_of_file?
section_header: "@@" LF | "@@ " TEXT LF
section_line: context_line | removed_line | new_line
context_line: " " TEXT? LF
removed_line: "-" TEXT? LF
new_line: "+" TEXT? LF
// Marks a section whose lines must be the last lines of the file.
end_of_file: "*** End of File" LF

PATH: /[^\r\n]+/
TEXT: /[^\r\n]+/
LF: "\n"
"#;

const FREEFORM_DESCRIPTION: &str = "Create, delete, edit or rename files by sending a patch. \
This is a freeform tool: send the raw patch text that the grammar describes, not JSON and not \
a shell command. Paths are relative to the working directory. In an edit section, lines \
starting with a space are unchanged context (give about three before and after each change), \
'-' lines are removed and '+' lines are added; start each section with '@@', optionally \
followed by a line such as a function header that locates it.";

const FUNCTION_DESCRIPTION: &str = r#"Create, delete, edit or rename files by applying a patch. Put the whole patch in `input`.

The patch is plain text framed by two marker lines:

*** Begin Patch
<one or more file operations>
*** End Patch

A file operation is one of:
- `*** Add File: <path>` followed by the new file's lines, each prefixed with `+`.
- `*** Delete File: <path>` with nothing after it.
- `*** Update File: <path>`, optionally followed by `*** Move to: <new path>` to rename the file, then one or more sections.

A section starts with a line `@@`, or `@@ <line>` where <line> is an existing line of the file (a function, class or heading) that comes before the change and tells the sections apart when the same code appears twice. Then come the section's lines, each with a one-character prefix:
- ` ` (a space): an unchanged line, used to find the place;
- `-`: a line to remove;
- `+`: a line to add.
Show about three unchanged lines before and after each change, do not repeat lines between sections, and list sections in file order. End a section with `*** End of File` when its lines are the last lines of the file.

Paths are relative to the working directory (never absolute unless the user gave one). Every added line, even in a new file, needs its `+`.

Example:
*** Begin Patch
*** Add File: docs/notes.md
+# Notes
+First entry.
*** Update File: src/greet.py
*** Move to: src/hello.py
@@ def greet(name):
-    print("Hi " + name)
+    print(f"Hello, {name}!")
*** Delete File: old/unused.txt
*** End Patch"#;

/// The freeform tool: `{"type":"custom","name":"apply_patch",…}` with the
/// patch grammar as its format. Offer it to models that support custom
/// tools; the call's `input` is the patch text itself.
pub fn freeform_tool() -> Value {
    json!({
        "type": "custom",
        "name": TOOL_NAME,
        "description": FREEFORM_DESCRIPTION,
        "format": {
            "type": "grammar",
            "syntax": "lark",
            "definition": PATCH_GRAMMAR,
        },
    })
}

/// The JSON function tool: `{"type":"function","name":"apply_patch",…}`
/// whose single required string parameter `input` holds the patch. Offer it
/// to models without custom tools.
pub fn function_tool() -> Value {
    json!({
        "type": "function",
        "name": TOOL_NAME,
        "description": FUNCTION_DESCRIPTION,
        "strict": false,
        "parameters": {
            "type": "object",
            "properties": {
                "input": {
                    "type": "string",
                    "description": "The entire patch, from '*** Begin Patch' to '*** End Patch'.",
                },
            },
            "required": ["input"],
            "additionalProperties": false,
        },
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::apply_patch::parser::parse_patch;

    #[test]
    fn freeform_tool_shape() {
        let tool = freeform_tool();
        assert_eq!(tool["type"], "custom");
        assert_eq!(tool["name"], "apply_patch");
        assert!(tool["description"].as_str().unwrap().contains("freeform"));
        assert_eq!(tool["format"]["type"], "grammar");
        assert_eq!(tool["format"]["syntax"], "lark");
        let grammar = tool["format"]["definition"].as_str().unwrap();
        assert!(grammar.starts_with("// codex-lite"));
        for marker in [
            "*** Begin Patch",
            "*** End Patch",
            "*** Add File: ",
            "*** Delete File: ",
            "*** Update File: ",
            "*** Move to: ",
            "*** End of File",
            "start:",
        ] {
            assert!(grammar.contains(marker), "{marker}");
        }
    }

    #[test]
    fn function_tool_shape() {
        let tool = function_tool();
        assert_eq!(tool["type"], "function");
        assert_eq!(tool["name"], "apply_patch");
        assert_eq!(tool["strict"], false);
        let params = &tool["parameters"];
        assert_eq!(params["type"], "object");
        assert_eq!(params["properties"]["input"]["type"], "string");
        assert_eq!(params["required"], json!(["input"]));
        assert_eq!(params["additionalProperties"], false);
    }

    #[test]
    fn description_example_parses() {
        let description = FUNCTION_DESCRIPTION;
        let start = description.rfind("*** Begin Patch").unwrap();
        let patch = parse_patch(&description[start..]).unwrap();
        assert_eq!(patch.hunks.len(), 3);
    }
}
