"""Erase TypeScript types from a script so that V8 can run it with unchanged positions.

`erase_types` parses the script with tree-sitter's TypeScript grammar and replaces every
TypeScript-only construct with spaces, keeping line terminators. Each remaining token keeps its
line and column, so a V8 stack trace points at the TypeScript as written, without a source map.

The script is the body of an async function. The grammar accepts `return` and `await` at the top
level, so the script is parsed as given and no positions need mapping.

Three things cannot be done by blanking alone:

- Automatic semicolon insertion. When a blanked region starts or ends a statement and the next
  kept token could continue the previous expression (`(`, `[`, a template, an operator), one
  blank is written as `;`. A few other places where blanking would change the meaning raise
  `TypeScriptSyntaxError` instead.
- Line breaks before `=>` and after `async`. A `(` or `)` moves inside the blanked type so the
  arrow function stays valid JavaScript.
- Enums have run-time values. Each enum becomes an object on the lines it occupied.
"""

from __future__ import annotations

import bisect
import math
import re
import threading
from typing import Final

import tree_sitter_typescript
from tree_sitter import Language, Node, Parser, Query, QueryCursor

__all__ = ["TypeScriptSyntaxError", "erase_types"]


class TypeScriptSyntaxError(ValueError):
    """Raised when a script is not valid TypeScript or uses a construct that cannot be erased.

    `line` and `column` are 1-based. The column counts characters (code points) from the start
    of the line. Lines end at `\\n`, `\\r\\n`, `\\r`, U+2028 and U+2029, as in JavaScript.
    """

    def __init__(self, message: str, *, line: int, column: int) -> None:
        self.message = message
        self.line = line
        self.column = column
        super().__init__(f"{message} (line {line}, column {column})")


_LANGUAGE: Final = Language(tree_sitter_typescript.language_typescript())

# Capture names select the handler in `_Eraser._collect`. A pattern may match nodes inside a
# region that another pattern blanks whole (a type annotation inside an interface): those
# nested edits are dropped when the edits are sorted.
_QUERY: Final = Query(
    _LANGUAGE,
    """
    (type_annotation) @annotation
    (asserts_annotation) @annotation
    (type_predicate_annotation) @annotation
    (type_parameters) @type_parameters
    (type_arguments) @blank
    (implements_clause) @blank
    (accessibility_modifier) @blank
    (override_modifier) @blank
    (non_null_expression "!" @blank)
    (optional_parameter "?" @blank)
    (variable_declarator "!" @blank)
    (public_field_definition ["?" "!" "readonly"] @blank)
    (method_definition "?" @blank)
    (abstract_class_declaration "abstract" @blank)
    (as_expression "as" @operator)
    (satisfies_expression "satisfies" @operator)
    (call_expression function: [(as_expression) (satisfies_expression)] @called_assertion)
    (lookup_type "[" @type_bracket)
    (array_type "[" @type_bracket)
    (interface_declaration) @statement
    (type_alias_declaration) @statement
    (ambient_declaration) @statement
    (function_signature) @statement
    (import_statement "type") @statement
    (call_expression function: (import) @dynamic_import)
    (export_statement "type") @statement
    (export_statement
      declaration: [
        (interface_declaration)
        (type_alias_declaration)
        (ambient_declaration)
        (function_signature)
      ]) @statement
    (public_field_definition ["declare" "abstract"]) @statement
    (method_signature) @statement
    (abstract_method_signature) @statement
    (index_signature) @statement
    (import_specifier "type") @type_specifier
    (export_specifier "type") @type_specifier
    (required_parameter pattern: (this)) @this_parameter
    (required_parameter
      [(accessibility_modifier) (override_modifier) "readonly"]) @parameter_property
    (optional_parameter
      [(accessibility_modifier) (override_modifier) "readonly"]) @parameter_property
    (internal_module) @namespace
    (module) @namespace
    (enum_declaration) @enum
    (import_alias) @import_alias
    (export_statement "=") @export_assignment
    (decorator) @decorator
    """,
)

# A tree-sitter Parser or QueryCursor must not be used by two threads at once.
_thread_state = threading.local()

_COMMENT_TYPES: Final = frozenset({"comment", "html_comment"})

_STATEMENT_TYPES: Final = frozenset(
    {
        # JavaScript statements and declarations.
        "break_statement",
        "class_declaration",
        "continue_statement",
        "debugger_statement",
        "do_statement",
        "empty_statement",
        "export_statement",
        "expression_statement",
        "for_in_statement",
        "for_statement",
        "function_declaration",
        "generator_function_declaration",
        "if_statement",
        "import_statement",
        "labeled_statement",
        "lexical_declaration",
        "return_statement",
        "statement_block",
        "switch_statement",
        "throw_statement",
        "try_statement",
        "variable_declaration",
        "while_statement",
        "with_statement",
        # TypeScript declarations.
        "abstract_class_declaration",
        "ambient_declaration",
        "enum_declaration",
        "function_signature",
        "import_alias",
        "interface_declaration",
        "module",
        "type_alias_declaration",
        # Class members, which automatic semicolon insertion separates like statements.
        "abstract_method_signature",
        "class_static_block",
        "index_signature",
        "method_definition",
        "method_signature",
        "public_field_definition",
    }
)

# Nodes whose children are a list of statements or class members.
_STATEMENT_LISTS: Final = frozenset(
    {"program", "statement_block", "class_body", "switch_case", "switch_default"}
)

# Statements that always end with the `}` of a block, so nothing after them continues them.
# The erased form of an enum ends with `;`.
_BLOCK_STATEMENTS: Final = frozenset(
    {
        "abstract_class_declaration",
        "class_declaration",
        "class_static_block",
        "enum_declaration",
        "function_declaration",
        "generator_function_declaration",
        "method_definition",
        "statement_block",
        "switch_statement",
        "try_statement",
    }
)

_BRACKET_PAIRS: Final = {"(": ")", "[": "]", "{": "}", "${": "}"}
_CLOSING_BRACKETS: Final = frozenset({")", "]", "}"})
# Tokens that open and close strings, templates, regular expressions and comments.
_DELIMITERS: Final = ('"', "'", "`", "/")

# Parents in which a line break after the keyword ends the statement early.
_RESTRICTED_PARENTS: Final = {
    "return_statement": "return",
    "throw_statement": "throw",
    "yield_expression": "yield",
}

# First characters of a token that can continue the expression before it on an earlier line.
_CONTINUING_CHARACTERS: Final = frozenset(b"([`+-*/%<>=&|^?.,:")
_CONTINUING_WORDS: Final = frozenset({b"in", b"instanceof"})

_LINE_TERMINATOR_BYTES: Final = (b"\n", b"\r", "\u2028".encode(), "\u2029".encode())
_LINE_TERMINATOR: Final = re.compile(r"\r\n?|[\n\u2028\u2029]")
_NOT_LINE_TERMINATOR: Final = re.compile(r"[^\n\r\u2028\u2029]")

_IDENTIFIER: Final = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
# fmt: off
_RESERVED_WORDS: Final = frozenset({
    "arguments", "await", "break", "case", "catch", "class", "const", "continue", "debugger",
    "default", "delete", "do", "else", "enum", "eval", "export", "extends", "false", "finally",
    "for", "function", "if", "implements", "import", "in", "instanceof", "interface", "let",
    "new", "null", "package", "private", "protected", "public", "return", "static", "super",
    "switch", "this", "throw", "true", "try", "typeof", "var", "void", "while", "with",
    "yield",
})
# fmt: on


# The name that replaces `import` in a dynamic `import(...)` call; as long as `import`.
DYNAMIC_IMPORT_FUNCTION: Final = "$mport"


def erase_types(source: str) -> str:
    """Replace the TypeScript-only parts of `source` with spaces and return JavaScript.

    Line terminators are kept, so every remaining token keeps its line and column. Plain
    JavaScript comes back unchanged. Enums are rewritten as objects on the same lines, so
    columns after an enum on its last line may shift.

    Raises:
        TypeScriptSyntaxError: `source` does not parse, or uses a construct that has no
            JavaScript meaning after erasure (namespaces with values, parameter properties,
            decorators, `import X = ...`, `export =`).
    """
    data = source.encode("utf-8", "surrogatepass")
    # NOTE: tree-sitter-typescript 0.23.2 rejects some valid TypeScript: `as` or `satisfies`
    # as a variable name, a statement that starts with a call to `abstract`, `export type *`,
    # `static` index signatures, and U+2028 or U+2029 outside strings and comments. It also
    # reads a tagged template with type arguments as comparisons, so those stay in the output.
    tree = _parser().parse(data)
    root = tree.root_node
    if root.has_error:
        raise _syntax_error(data, _first_error(root))
    if b"<!--" in data or b"-->" in data:
        _reject_html_comments(data, root)

    captures = _query_cursor().captures(root)
    if not captures:
        return source

    eraser = _Eraser(data, root)
    edits = eraser.run(captures)
    if not edits:
        return source
    return _render(data, edits)


def _parser() -> Parser:
    parser: Parser | None = getattr(_thread_state, "parser", None)
    if parser is None:
        parser = Parser(_LANGUAGE)
        _thread_state.parser = parser
    return parser


def _query_cursor() -> QueryCursor:
    cursor: QueryCursor | None = getattr(_thread_state, "query_cursor", None)
    if cursor is None:
        cursor = QueryCursor(_QUERY)
        _thread_state.query_cursor = cursor
    return cursor


class _Problem(Exception):
    """Raised inside `_Eraser` for a construct that cannot be erased, at byte `offset`."""

    def __init__(self, offset: int, message: str) -> None:
        super().__init__(message)
        self.offset = offset
        self.message = message


class _Edit:
    """A replacement of the source bytes `start:end`.

    With `text` None the range is blanked: every character becomes a space except line
    terminators, then `prefix` overwrites the first blanks and `suffix` the last ones.
    """

    __slots__ = ("end", "prefix", "start", "suffix", "text")

    def __init__(self, start: int, end: int, text: str | None = None) -> None:
        self.start = start
        self.end = end
        self.text = text
        self.prefix = ""
        self.suffix = ""

    def render(self, data: bytes) -> str:
        if self.text is not None:
            return self.text
        blank = _blank_text(_decode(data[self.start : self.end]))
        if not self.prefix and not self.suffix:
            return blank
        characters = list(blank)
        spaces = [index for index, character in enumerate(characters) if character == " "]
        for index, character in zip(spaces, self.prefix, strict=False):
            characters[index] = character
        if self.suffix:
            for index, character in zip(spaces[-len(self.suffix) :], self.suffix, strict=False):
                characters[index] = character
        return "".join(characters)


class _Eraser:
    """Collector of the edits that turn one parsed script into JavaScript."""

    def __init__(self, data: bytes, root: Node) -> None:
        self.data = data
        self.root = root
        self.edits: dict[tuple[int, int], _Edit] = {}
        self.problems: list[_Problem] = []
        self.blank_starts: list[int] = []
        self.blanks: list[_Edit] = []

    def run(self, captures: dict[str, list[Node]]) -> list[_Edit]:
        """Return the edits sorted by position, or raise for the first construct that fails."""
        self._collect(captures)
        self._raise_first_problem()

        edits = self._outermost_edits()
        self.blanks = [edit for edit in edits if edit.text is None]
        self.blank_starts = [edit.start for edit in self.blanks]
        for edit in self.blanks:
            self._guard(edit)
        self._raise_first_problem()
        return edits

    def _collect(self, captures: dict[str, list[Node]]) -> None:
        handlers = {
            "annotation": self._erase_annotation,
            "type_parameters": self._erase_type_parameters,
            "blank": self.blank_node,
            "operator": self._erase_operator,
            "called_assertion": self._split_called_assertion,
            "type_bracket": self._check_type_bracket,
            "statement": self.blank_node,
            "type_specifier": self._erase_type_specifier,
            "this_parameter": self._erase_this_parameter,
            "parameter_property": self._reject_parameter_property,
            "namespace": self._erase_namespace,
            "enum": self._rewrite_enum,
            "import_alias": self._reject_import_alias,
            "export_assignment": self._reject_export_assignment,
            "decorator": self._reject_decorator,
            "dynamic_import": self._rename_dynamic_import,
        }
        for name, nodes in captures.items():
            handler = handlers[name]
            for node in nodes:
                try:
                    handler(node)
                except _Problem as problem:
                    self.problems.append(problem)

    def _raise_first_problem(self) -> None:
        if self.problems:
            first = min(self.problems, key=lambda problem: problem.offset)
            line, column = _position(self.data, first.offset)
            raise TypeScriptSyntaxError(first.message, line=line, column=column)

    def _outermost_edits(self) -> list[_Edit]:
        """Sort the edits and drop those inside a blanked region."""
        # At one offset an insertion comes first, then the longer of two ranges.
        ordered = sorted(
            self.edits.values(),
            key=lambda edit: (edit.start, edit.end > edit.start, -edit.end),
        )
        kept: list[_Edit] = []
        covered_until = -1
        for edit in ordered:
            if edit.start < covered_until:
                continue
            kept.append(edit)
            if edit.text is None:
                covered_until = edit.end
        return kept

    # Edits.

    def blank(self, start: int, end: int) -> _Edit:
        key = (start, end)
        edit = self.edits.get(key)
        if edit is None:
            edit = _Edit(start, end)
            self.edits[key] = edit
        return edit

    def replace(self, start: int, end: int, text: str) -> None:
        """Put `text` over the blanked range `start:end`, keeping its line terminators."""
        self.edits[(start, end)] = _Edit(start, end, _overlay(self.text(start, end), text))

    def insert(self, offset: int, text: str) -> None:
        self.edits[(offset, offset)] = _Edit(offset, offset, text)

    def blank_node(self, node: Node) -> None:
        self.blank(node.start_byte, node.end_byte)

    # Handlers, one per capture name.

    def _erase_annotation(self, node: Node) -> None:
        edit = self.blank(node.start_byte, node.end_byte)
        arrow = node.parent
        if arrow is None or arrow.type != "arrow_function":
            return
        if arrow.child_by_field_name("return_type") != node:
            return
        parameters = _field(arrow, "parameters")
        close = parameters.end_byte - 1
        if self._has_line_break(close, node.end_byte):
            # JavaScript forbids a line break between `)` and `=>`, so the `)` moves to the
            # end of the return type, which TypeScript requires on the line of the `=>`.
            self.blank(close, parameters.end_byte)
            edit.suffix = ")"

    def _erase_type_parameters(self, node: Node) -> None:
        edit = self.blank(node.start_byte, node.end_byte)
        arrow = node.parent
        if arrow is None or arrow.type != "arrow_function":
            return
        parameters = _field(arrow, "parameters")
        if self._has_line_break(node.start_byte, parameters.start_byte):
            # The `(` moves to where the `<` was, so it stays on the line of a preceding
            # `async`, `return` or `throw` that a line break would cut off.
            self.blank(parameters.start_byte, parameters.start_byte + 1)
            edit.prefix = "("

    def _erase_operator(self, node: Node) -> None:
        expression = _parent(node)
        self.blank(node.start_byte, expression.end_byte)

    def _split_called_assertion(self, node: Node) -> None:
        # tree-sitter reads `x as T` followed by `(...)` as a call, but TypeScript ends the
        # statement after the type when a line break follows it, and rejects the call otherwise.
        arguments = _field(_parent(node), "arguments")
        if not self._has_line_break(node.end_byte, arguments.start_byte):
            raise _Problem(
                arguments.start_byte,
                "a type assertion cannot be called directly. "
                "Wrap it in parentheses: '(value as Type)(...)'.",
            )
        operator = _operator(node)
        self.blank(operator.start_byte, node.end_byte).suffix = ";"

    def _check_type_bracket(self, node: Node) -> None:
        element = node.prev_sibling
        if element is not None and self._has_line_break(element.end_byte, node.start_byte):
            raise _Problem(
                node.start_byte,
                "a '[' at the start of a line continues the type before it here, "
                "but TypeScript starts a new statement. End the previous line with ';'.",
            )

    def _erase_type_specifier(self, node: Node) -> None:
        names = _parent(node)
        specifiers = [child for child in names.named_children if child.type == node.type]
        if all(_has_type_keyword(specifier) for specifier in specifiers):
            statement = _parent(names)
            if names.type == "named_imports":
                import_clause = statement
                statement = _parent(import_clause)
                has_default = import_clause.named_child_count > 1
            else:
                has_default = False
            if not has_default:
                # TypeScript drops an import or export that names only types.
                self.blank_node(statement)
                return
        self._blank_through_comma(node)

    def _erase_this_parameter(self, node: Node) -> None:
        self._blank_through_comma(node)

    def _reject_parameter_property(self, node: Node) -> None:
        raise _Problem(
            node.start_byte,
            "constructor parameter properties cannot be erased. "
            "Declare the field in the class body and assign it in the constructor.",
        )

    def _erase_namespace(self, node: Node) -> None:
        if _inside_ambient(node):
            return
        body = node.child_by_field_name("body")
        if body is not None and not _has_only_types(body):
            raise _Problem(
                node.start_byte,
                "namespaces that contain values cannot be erased. Use a plain object instead.",
            )
        statement = node
        parent = node.parent
        while parent is not None and parent.type in ("expression_statement", "export_statement"):
            statement = parent
            parent = parent.parent
        self.blank_node(statement)

    def _rewrite_enum(self, node: Node) -> None:
        if not _inside_ambient(node):
            _EnumWriter(self, node).write()

    def _reject_import_alias(self, node: Node) -> None:
        raise _Problem(
            node.start_byte,
            "'import X = ...' aliases cannot be erased. Use 'const X = ...' instead.",
        )

    def _reject_export_assignment(self, node: Node) -> None:
        raise _Problem(node.start_byte, "'export =' is not supported. Remove it.")

    def _rename_dynamic_import(self, node: Node) -> None:
        # V8 without a module loader rejects `import()` with a bare "Not supported";
        # the sandbox prelude defines DYNAMIC_IMPORT_FUNCTION to reject it with a
        # NetworkAccessError instead. Same length, so positions are kept.
        self.replace(node.start_byte, node.end_byte, DYNAMIC_IMPORT_FUNCTION)

    def _reject_decorator(self, node: Node) -> None:
        raise _Problem(
            node.start_byte,
            "decorators are not supported. "
            "Call the decorator function on the class or method after its declaration.",
        )

    def _blank_through_comma(self, node: Node) -> None:
        end = node.end_byte
        following = node.next_sibling
        if following is not None and following.type == ",":
            end = following.end_byte
        self.blank(node.start_byte, end)

    # Automatic semicolon insertion and other hazards of blanking.

    def _guard(self, edit: _Edit) -> None:
        self._guard_start(edit)
        self._guard_end(edit)

    def _guard_start(self, edit: _Edit) -> None:
        """Check a region that starts an expression, statement or class member."""
        node = self.root.descendant_for_byte_range(edit.start, edit.start + 1)
        if node is None:
            return
        statement: Node | None = None
        while True:
            if node.type in _STATEMENT_TYPES:
                statement = node
            parent = node.parent
            if parent is None or parent.parent is None or parent.start_byte != edit.start:
                break
            node = parent

        restricted = parent is not None and parent.type in _RESTRICTED_PARENTS
        if statement is None and not restricted and not _is_arrow_body(node):
            return
        following = self._token_after(edit.end)
        try:
            self._check_restricted(edit, parent, following)
            self._check_brace_start(edit, statement, node, following)
        except _Problem as problem:
            self.problems.append(problem)
        if statement is not None:
            self._separate_from_previous(edit, statement, following)

    def _check_restricted(self, edit: _Edit, parent: Node | None, following: Node | None) -> None:
        if parent is None:
            return
        keyword = _RESTRICTED_PARENTS.get(parent.type)
        if keyword is None or edit.prefix.startswith("("):
            return
        end = following.start_byte if following is not None else len(self.data)
        if self._has_line_break(edit.start, end):
            raise _Problem(
                edit.start,
                f"removing this type leaves a line break after '{keyword}', which ends the "
                "statement early. Keep the type and the value on one line.",
            )

    def _check_brace_start(
        self, edit: _Edit, statement: Node | None, outer: Node, following: Node | None
    ) -> None:
        if following is None:
            return
        token = self._token_text(following)
        if (
            statement is not None
            and statement.type == "expression_statement"
            and edit.end < statement.end_byte
        ):
            if token in (b"{", b"function", b"class"):
                place = "a statement"
            else:
                return
        elif token == b"{" and _is_arrow_body(outer):
            place = "an arrow function body"
        else:
            return
        raise _Problem(
            edit.start,
            f"removing this type leaves '{token.decode()}' at the start of {place}, "
            "which changes its meaning. Write '(value as Type)' instead.",
        )

    def _separate_from_previous(self, edit: _Edit, statement: Node, following: Node | None) -> None:
        """Write `;` first if the next kept token would otherwise join the previous statement."""
        container = _parent(statement)
        if container.type not in _STATEMENT_LISTS:
            if edit.end >= statement.end_byte:
                # A blanked body of `if`, `while` or a label must stay a statement.
                edit.prefix = ";" + edit.prefix
            return
        if following is None or not self._continues_expression(following):
            return
        previous = _previous_statement(statement)
        if previous is None or self._ends_statement(previous):
            return
        edit.prefix = ";" + edit.prefix

    def _guard_end(self, edit: _Edit) -> None:
        """Write `;` last if the region ends a statement that the next token would continue."""
        statement = self._statement_ending_at(edit.end)
        if statement is None or statement.start_byte >= edit.start:
            return
        following = self._token_after(edit.end)
        if following is not None and self._continues_expression(following):
            edit.suffix = ";"

    def _statement_ending_at(self, offset: int) -> Node | None:
        node = self.root.descendant_for_byte_range(offset - 1, offset)
        while node is not None and node.end_byte == offset:
            if node.type in _STATEMENT_TYPES:
                return node
            node = node.parent
        return None

    def _ends_statement(self, statement: Node) -> bool:
        """Tell whether nothing after `statement` can continue it once the edits are applied."""
        if self.data[statement.end_byte - 1 : statement.end_byte] == b";":
            return True
        if statement.type in _BLOCK_STATEMENTS:
            return True
        region = self._blank_at(statement.start_byte)
        return region is not None and region.end >= statement.end_byte

    def _token_after(self, offset: int) -> Node | None:
        """Return the first token at or after `offset` that is neither a comment nor blanked."""
        while True:
            token = self._first_token_from(offset)
            if token is None:
                return None
            if token.type in _COMMENT_TYPES:
                offset = token.end_byte
                continue
            region = self._blank_at(token.start_byte)
            if region is None:
                return token
            offset = region.end

    def _first_token_from(self, offset: int) -> Node | None:
        node = self.root
        while node.child_count:
            # NOTE: py-tree-sitter 0.26.1 crashes in `first_child_for_byte` when no child ends
            # after the offset, so that case is checked first.
            if offset >= node.end_byte:
                return None
            child = node.first_child_for_byte(offset)
            if child is None:
                return None
            node = child
        return node

    def _blank_at(self, offset: int) -> _Edit | None:
        index = bisect.bisect_right(self.blank_starts, offset) - 1
        if index < 0:
            return None
        region = self.blanks[index]
        return region if offset < region.end else None

    def _continues_expression(self, token: Node) -> bool:
        text = self._token_text(token)
        return text[0] in _CONTINUING_CHARACTERS or text in _CONTINUING_WORDS

    # Source access.

    def _token_text(self, node: Node) -> bytes:
        return self.data[node.start_byte : node.end_byte]

    def text(self, start: int, end: int) -> str:
        return _decode(self.data[start:end])

    def _has_line_break(self, start: int, end: int) -> bool:
        segment = self.data[start:end]
        return any(terminator in segment for terminator in _LINE_TERMINATOR_BYTES)


class _EnumWriter:
    """Writer of one enum declaration as a JavaScript object, member by member in place.

    An enum whose values are all number or string literals becomes an object literal::

        enum Color { Red, Green = "g" }  ->  const Color = { Red: 0, [0]: "Red", Green: "g" };

    An enum with computed values becomes a function that fills the object in member order and
    declares each member name as a local constant, because TypeScript lets a member's
    initializer name earlier members without the enum prefix.

    NOTE: the enum becomes a `const`, so two declarations of one enum, which TypeScript merges,
    fail in V8 as a redeclaration.
    """

    def __init__(self, eraser: _Eraser, node: Node) -> None:
        self.eraser = eraser
        self.node = node
        name = _field(node, "name")
        self.name = eraser.text(name.start_byte, name.end_byte)
        self.body = _field(node, "body")

    def write(self) -> None:
        members = [
            self._member(child) for child in self.body.named_children if not _is_comment(child)
        ]
        if all(member.kind != "computed" for member in members):
            self._write_object(members)
        else:
            self._write_function(members)

    def _member(self, child: Node) -> _EnumMember:
        if child.type == "enum_assignment":
            name_node = _field(child, "name")
            value = _field(child, "value")
        else:
            name_node = child
            value = None
        key, binding = self._key(name_node)
        kind, number = self._classify(value)
        return _EnumMember(child, key, binding, value, kind, number)

    def _key(self, name_node: Node) -> tuple[str, str | None]:
        """Return the member name as a JavaScript string literal and as a local name if valid."""
        text = self.eraser.text(name_node.start_byte, name_node.end_byte)
        if name_node.type == "property_identifier":
            # A `__proto__` key in an object literal would set the prototype instead.
            usable = (
                _IDENTIFIER.fullmatch(text) is not None
                and text not in _RESERVED_WORDS
                and text not in (self.name, "__proto__")
            )
            return f'"{text}"', text if usable else None
        if name_node.type == "string":
            return text, None
        if name_node.type == "computed_property_name" and name_node.named_child_count == 1:
            inner = name_node.named_children[0]
            if inner.type == "string":
                return self.eraser.text(inner.start_byte, inner.end_byte), None
        raise _Problem(
            name_node.start_byte,
            "enum member names must be identifiers or string literals. Rename this member.",
        )

    def _classify(self, value: Node | None) -> tuple[str, float | None]:
        """Return "auto", "number", "string" or "computed", and the number when known."""
        if value is None:
            return "auto", None
        if value.type == "string":
            return "string", None
        text = self.eraser.text(value.start_byte, value.end_byte)
        number = _parse_number(text.replace(" ", ""))
        if number is not None:
            return "number", number
        return "computed", None

    def _numbers(self, members: list[_EnumMember]) -> None:
        """Fill in the values of members without an initializer, as TypeScript counts them."""
        previous: _EnumMember | None = None
        for member in members:
            if member.kind == "auto":
                if previous is None:
                    member.number = 0
                elif previous.kind == "string":
                    raise _Problem(
                        member.node.start_byte,
                        f"enum member {member.key} needs an initializer because the member "
                        "before it has a string value.",
                    )
                elif previous.number is not None:
                    member.number = previous.number + 1
            previous = member

    def _write_object(self, members: list[_EnumMember]) -> None:
        self._numbers(members)
        self._write_header(f"const {self.name} = {{")
        for member in members:
            key = member.binding if member.binding is not None else f"[{member.key}]"
            reverse = (
                ""
                if member.number is None
                else f", [{_format_number(member.number)}]: {member.key}"
            )
            if member.value is None:
                self.eraser.replace(
                    member.node.start_byte,
                    member.node.end_byte,
                    f"{key}: {_format_number(member.number or 0)}{reverse}",
                )
                continue
            self.eraser.replace(member.node.start_byte, member.value.start_byte, f"{key}: ")
            if reverse:
                self.eraser.insert(member.value.end_byte, reverse)
        self._write_footer("};")

    def _write_function(self, members: list[_EnumMember]) -> None:
        self._numbers(members)
        enum = self.name
        self._write_header(f"const {enum} = ({enum} => {{")
        previous: _EnumMember | None = None
        for member in members:
            target = f"{enum}[{member.key}]"
            prefix = f"const {member.binding} = {target} = " if member.binding else f"{target} = "
            value = member.binding or target
            if member.kind == "string":
                suffix = ";"
            elif member.kind == "computed":
                suffix = f'; if (typeof {value} !== "string") {enum}[{value}] = {member.key};'
            else:
                suffix = f"; {enum}[{value}] = {member.key};"

            if member.value is not None:
                self.eraser.replace(member.node.start_byte, member.value.start_byte, prefix)
                self.eraser.insert(member.value.end_byte, suffix)
            else:
                if member.number is not None:
                    start = _format_number(member.number)
                else:
                    assert previous is not None  # the first member always gets number 0
                    start = f"{enum}[{previous.key}] + 1"
                self.eraser.replace(
                    member.node.start_byte, member.node.end_byte, prefix + start + suffix
                )
            previous = member

        for child in self.body.children:
            if child.type == ",":
                self.eraser.blank_node(child)
        self._write_footer(f"return {enum}; }})({{}});")

    def _write_header(self, text: str) -> None:
        opening = self.body.children[0]
        self.eraser.replace(self.node.start_byte, opening.end_byte, text)

    def _write_footer(self, text: str) -> None:
        closing = self.body.children[-1]
        self.eraser.replace(closing.start_byte, closing.end_byte, text)


class _EnumMember:
    __slots__ = ("binding", "key", "kind", "node", "number", "value")

    def __init__(
        self,
        node: Node,
        key: str,
        binding: str | None,
        value: Node | None,
        kind: str,
        number: float | None,
    ) -> None:
        self.node = node
        self.key = key
        self.binding = binding
        self.value = value
        self.kind = kind
        self.number = number


# Helpers on nodes and text.


def _field(node: Node, name: str) -> Node:
    child = node.child_by_field_name(name)
    if child is None:
        raise _Problem(node.start_byte, f"the parser returned a {node.type} without {name}.")
    return child


def _parent(node: Node) -> Node:
    parent = node.parent
    if parent is None:
        raise _Problem(node.start_byte, f"the parser returned a {node.type} without a parent.")
    return parent


def _is_comment(node: Node) -> bool:
    return node.type in _COMMENT_TYPES


def _operator(expression: Node) -> Node:
    for child in expression.children:
        if child.type in ("as", "satisfies"):
            return child
    raise _Problem(
        expression.start_byte, f"the parser returned a {expression.type} without an operator."
    )


def _has_type_keyword(specifier: Node) -> bool:
    first = specifier.child(0)
    return first is not None and first.type == "type" and not first.is_named


def _inside_ambient(node: Node) -> bool:
    parent = node.parent
    while parent is not None:
        if parent.type == "ambient_declaration":
            return True
        parent = parent.parent
    return False


def _has_only_types(body: Node) -> bool:
    """Tell whether a namespace body declares types only, so erasing it loses no value."""
    for child in body.named_children:
        if child.type == "export_statement":
            declaration = child.child_by_field_name("declaration")
            if declaration is None:
                return False
            child = declaration
        if child.type == "expression_statement" and child.named_child_count == 1:
            child = child.named_children[0]
        if child.type in ("internal_module", "module"):
            inner = child.child_by_field_name("body")
            if inner is not None and not _has_only_types(inner):
                return False
        elif child.type not in (
            "interface_declaration",
            "type_alias_declaration",
            "ambient_declaration",
            "function_signature",
            "comment",
        ):
            return False
    return True


def _is_arrow_body(node: Node) -> bool:
    parent = node.parent
    return (
        parent is not None
        and parent.type == "arrow_function"
        and parent.child_by_field_name("body") == node
    )


def _previous_statement(statement: Node) -> Node | None:
    previous = statement.prev_sibling
    while previous is not None and _is_comment(previous):
        previous = previous.prev_sibling
    if previous is None or not previous.is_named:
        return None
    return previous


# Tokens inside which `<!--` and `-->` are plain text.
_TEXT_NODES: Final = frozenset(
    {"string", "template_string", "comment", "regex", "html_comment", "string_fragment"}
)


def _reject_html_comments(data: bytes, root: Node) -> None:
    """Raise when code outside strings and comments contains `<!--`, or `-->` first on a line.

    V8 reads both as the start of a line comment in scripts (an Annex B rule of
    ECMAScript), while tree-sitter may read them as operators, so the erased
    code would run differently from the code that was checked.
    """
    stack = [root]
    while stack:
        node = stack.pop()
        if node.type in _TEXT_NODES:
            continue
        if node.child_count:
            stack.extend(node.children)
            continue
        following = data[node.start_byte : node.start_byte + 4]
        line_start = data.rfind(b"\n", 0, node.start_byte) + 1
        first_on_line = not data[line_start : node.start_byte].strip()
        if following.startswith(b"<!--") or (following.startswith(b"-->") and first_on_line):
            line, column = _position(data, node.start_byte)
            raise TypeScriptSyntaxError(
                "HTML-like comments (<!-- and -->) are not supported; use // or /* */, "
                "or add spaces between the operators",
                line=line,
                column=column,
            )


def _first_error(root: Node) -> Node:
    """Return the first ERROR or MISSING node in source order."""
    stack = [root]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            return node
        if node.has_error:
            stack.extend(reversed(node.children))
    return root


def _syntax_error(data: bytes, node: Node) -> TypeScriptSyntaxError:
    if node.is_missing:
        offset = node.start_byte
        message = f"missing '{node.type}'. Add it here."
    else:
        offset, message = _describe_error(data, node)
    line, column = _position(data, offset)
    return TypeScriptSyntaxError(message, line=line, column=column)


def _describe_error(data: bytes, node: Node) -> tuple[int, str]:
    """Return the offset and message for an ERROR node.

    tree-sitter's error recovery often wraps a whole statement, so the node's first token is
    the last choice. An unmatched closing bracket inside the node comes first. Next comes the
    end of the script, when the node runs to the end with a bracket or string left open.
    """
    tokens = _tokens(node)
    open_brackets: list[str] = []
    for token in tokens:
        if token.type in _BRACKET_PAIRS:
            open_brackets.append(_BRACKET_PAIRS[token.type])
        elif token.type in _CLOSING_BRACKETS and (
            not open_brackets or open_brackets.pop() != token.type
        ):
            return token.start_byte, _unexpected(data, token)

    unterminated = any(
        sum(token.type == delimiter for token in tokens) % 2 for delimiter in _DELIMITERS
    )
    if (open_brackets or unterminated or not tokens) and not data[node.end_byte :].strip():
        message = (
            "unexpected end of the script. Close every open bracket, string, template and comment."
        )
        return node.end_byte, message
    first = tokens[0] if tokens else node
    return first.start_byte, _unexpected(data, first)


def _unexpected(data: bytes, token: Node) -> str:
    text = _decode(data[token.start_byte : token.end_byte])
    return f"unexpected {text[:40]!r}. Fix the syntax at this position."


def _tokens(node: Node) -> list[Node]:
    """Return the leaves under `node` in source order."""
    tokens: list[Node] = []
    stack = list(reversed(node.children))
    while stack:
        child = stack.pop()
        if child.child_count:
            stack.extend(reversed(child.children))
        else:
            tokens.append(child)
    return tokens


def _position(data: bytes, offset: int) -> tuple[int, int]:
    before = _decode(data[:offset])
    line = 1
    line_start = 0
    for match in _LINE_TERMINATOR.finditer(before):
        line += 1
        line_start = match.end()
    return line, len(before) - line_start + 1


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "surrogatepass")


def _blank_text(text: str) -> str:
    # NOTE: one space replaces each code point. V8 counts columns in UTF-16 units, so a blanked
    # character outside the Basic Multilingual Plane moves V8's columns after it by one.
    if text.isascii() and "\n" not in text and "\r" not in text:
        return " " * len(text)
    return _NOT_LINE_TERMINATOR.sub(" ", text)


def _overlay(original: str, text: str) -> str:
    """Return `text` followed by the blanked rest of `original`, keeping its line terminators.

    `text` uses the blanks of the first line and makes that line longer if it does not fit.
    """
    blank = _blank_text(original)
    match = _LINE_TERMINATOR.search(blank)
    first_line_end = match.start() if match is not None else len(blank)
    if len(text) <= first_line_end:
        return text + blank[len(text) :]
    return text + blank[first_line_end:]


def _render(data: bytes, edits: list[_Edit]) -> str:
    pieces: list[str] = []
    position = 0
    for edit in edits:
        pieces.append(_decode(data[position : edit.start]))
        pieces.append(edit.render(data))
        position = edit.end
    pieces.append(_decode(data[position:]))
    return "".join(pieces)


def _parse_number(text: str) -> float | None:
    """Return the value of a JavaScript number literal, optionally negated, or None."""
    negative = text.startswith("-")
    digits = text[1:] if negative else text
    digits = digits.replace("_", "")
    try:
        if digits[:2].lower() in ("0x", "0o", "0b"):
            value: float = int(digits, 0)
        elif re.fullmatch(r"0[0-9]+", digits):
            return None  # a legacy octal literal, left to JavaScript
        elif re.fullmatch(r"(0|[1-9][0-9]*)", digits):
            value = int(digits)
        elif re.fullmatch(r"([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?", digits):
            value = float(digits)
        else:
            return None
    except ValueError:
        return None
    if not math.isfinite(value):
        return None
    return -value if negative else value


def _format_number(number: float) -> str:
    if isinstance(number, float) and number.is_integer() and abs(number) < 2**53:
        return str(int(number))
    return repr(number)
