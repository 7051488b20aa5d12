/* introspect.c: the introspection system — __schema, __type(name:) and the objects they lead to.
 *
 * The built-in part of every schema is written below in SDL: the specified scalars and
 * directives and the introspection types, with the descriptions of the specification. schema.c
 * parses it before the caller's SDL, so the introspection types are ordinary object types that
 * validation and execution know; only their fields' values come from here.
 *
 * Values are JSON: a type is named by a reference object {"kind", "name"} (a wrapper by
 * {"kind": "LIST"|"NON_NULL", "name": null, "ofType": …}); its other fields (description,
 * fields, enumValues, inputFields, …) are looked up by name when asked for. __Field,
 * __InputValue, __EnumValue and __Directive objects are built whole (they are small) and their
 * fields are their members, except args(includeDeprecated:), which filters. */
#include <stdlib.h>
#include <string.h>

#include "gql/gql_int.h"

const char hr_gql_builtin_sdl[] =
    "\"The `Int` scalar type represents non-fractional signed whole numeric values. Int can "
    "represent values between -(2^31) and 2^31 - 1.\"\n"
    "scalar Int\n"
    "\"The `Float` scalar type represents signed double-precision fractional values as "
    "specified by [IEEE 754](https://en.wikipedia.org/wiki/IEEE_floating_point).\"\n"
    "scalar Float\n"
    "\"The `String` scalar type represents textual data, represented as UTF-8 character "
    "sequences. The String type is most often used by GraphQL to represent free-form "
    "human-readable text.\"\n"
    "scalar String\n"
    "\"The `Boolean` scalar type represents `true` or `false`.\"\n"
    "scalar Boolean\n"
    "\"The `ID` scalar type represents a unique identifier, often used to refetch an object or "
    "as key for a cache. The ID type appears in a JSON response as a String; however, it is not "
    "intended to be human-readable. When expected as an input type, any string (such as "
    "`\\\"4\\\"`) or integer (such as `4`) input value will be accepted as an ID.\"\n"
    "scalar ID\n"
    "\"Directs the executor to include this field or fragment only when the `if` argument is "
    "true.\"\n"
    "directive @include(\"Included when true.\" if: Boolean!) on FIELD | FRAGMENT_SPREAD | "
    "INLINE_FRAGMENT\n"
    "\"Directs the executor to skip this field or fragment when the `if` argument is true.\"\n"
    "directive @skip(\"Skipped when true.\" if: Boolean!) on FIELD | FRAGMENT_SPREAD | "
    "INLINE_FRAGMENT\n"
    "\"Marks an element of a GraphQL schema as no longer supported.\"\n"
    "directive @deprecated(\"Explains why this element was deprecated, usually also including "
    "a suggestion for how to access supported similar data. Formatted using the Markdown "
    "syntax, as specified by [CommonMark](https://commonmark.org/).\" reason: String = \"No "
    "longer supported\") on FIELD_DEFINITION | ARGUMENT_DEFINITION | INPUT_FIELD_DEFINITION | "
    "ENUM_VALUE\n"
    "\"Exposes a URL that specifies the behavior of this scalar.\"\n"
    "directive @specifiedBy(\"The URL that specifies the behavior of this scalar.\" url: "
    "String!) on SCALAR\n"
    "\"Indicates exactly one field must be supplied and this field must not be `null`.\"\n"
    "directive @oneOf on INPUT_OBJECT\n"
    "\"A GraphQL Schema defines the capabilities of a GraphQL server. It exposes all available "
    "types and directives on the server, as well as the entry points for query, mutation, and "
    "subscription operations.\"\n"
    "type __Schema {\n"
    "  description: String\n"
    "  \"A list of all types supported by this server.\" types: [__Type!]!\n"
    "  \"The type that query operations will be rooted at.\" queryType: __Type!\n"
    "  \"If this server supports mutation, the type that mutation operations will be rooted "
    "at.\" mutationType: __Type\n"
    "  \"If this server support subscription, the type that subscription operations will be "
    "rooted at.\" subscriptionType: __Type\n"
    "  \"A list of all directives supported by this server.\" directives(includeDeprecated: "
    "Boolean! = false): [__Directive!]!\n"
    "}\n"
    "\"The fundamental unit of any GraphQL Schema is the type. There are many kinds of types in "
    "GraphQL as represented by the `__TypeKind` enum.\\n\\nDepending on the kind of a type, "
    "certain fields describe information about that type. Scalar types provide no information "
    "beyond a name, description and optional `specifiedByURL`, while Enum types provide their "
    "values. Object and Interface types provide the fields they describe. Abstract types, Union "
    "and Interface, provide the Object types possible at runtime. List and NonNull types "
    "compose other types.\"\n"
    "type __Type {\n"
    "  kind: __TypeKind!\n"
    "  name: String\n"
    "  description: String\n"
    "  specifiedByURL: String\n"
    "  fields(includeDeprecated: Boolean = false): [__Field!]\n"
    "  interfaces: [__Type!]\n"
    "  possibleTypes: [__Type!]\n"
    "  enumValues(includeDeprecated: Boolean = false): [__EnumValue!]\n"
    "  inputFields(includeDeprecated: Boolean = false): [__InputValue!]\n"
    "  ofType: __Type\n"
    "  isOneOf: Boolean\n"
    "}\n"
    "\"An enum describing what kind of type a given `__Type` is.\"\n"
    "enum __TypeKind {\n"
    "  \"Indicates this type is a scalar.\" SCALAR\n"
    "  \"Indicates this type is an object. `fields` and `interfaces` are valid fields.\" OBJECT\n"
    "  \"Indicates this type is an interface. `fields`, `interfaces`, and `possibleTypes` are "
    "valid fields.\" INTERFACE\n"
    "  \"Indicates this type is a union. `possibleTypes` is a valid field.\" UNION\n"
    "  \"Indicates this type is an enum. `enumValues` is a valid field.\" ENUM\n"
    "  \"Indicates this type is an input object. `inputFields` is a valid field.\" INPUT_OBJECT\n"
    "  \"Indicates this type is a list. `ofType` is a valid field.\" LIST\n"
    "  \"Indicates this type is a non-null. `ofType` is a valid field.\" NON_NULL\n"
    "}\n"
    "\"Object and Interface types are described by a list of Fields, each of which has a name, "
    "potentially a list of arguments, and a return type.\"\n"
    "type __Field {\n"
    "  name: String!\n"
    "  description: String\n"
    "  args(includeDeprecated: Boolean = false): [__InputValue!]!\n"
    "  type: __Type!\n"
    "  isDeprecated: Boolean!\n"
    "  deprecationReason: String\n"
    "}\n"
    "\"Arguments provided to Fields or Directives and the input fields of an InputObject are "
    "represented as Input Values which describe their type and optionally a default value.\"\n"
    "type __InputValue {\n"
    "  name: String!\n"
    "  description: String\n"
    "  type: __Type!\n"
    "  \"A GraphQL-formatted string representing the default value for this input value.\" "
    "defaultValue: String\n"
    "  isDeprecated: Boolean!\n"
    "  deprecationReason: String\n"
    "}\n"
    "\"One possible value for a given Enum. Enum values are unique values, not a placeholder for "
    "a string or numeric value. However an Enum value is returned in a JSON response as a "
    "string.\"\n"
    "type __EnumValue {\n"
    "  name: String!\n"
    "  description: String\n"
    "  isDeprecated: Boolean!\n"
    "  deprecationReason: String\n"
    "}\n"
    "\"A Directive provides a way to describe alternate runtime execution and type validation "
    "behavior in a GraphQL document.\\n\\nIn some cases, you need to provide options to alter "
    "GraphQL's execution behavior in ways field arguments will not suffice, such as "
    "conditionally including or skipping a field. Directives provide this by describing "
    "additional information to the executor.\"\n"
    "type __Directive {\n"
    "  name: String!\n"
    "  description: String\n"
    "  isRepeatable: Boolean!\n"
    "  locations: [__DirectiveLocation!]!\n"
    "  args(includeDeprecated: Boolean = false): [__InputValue!]!\n"
    "  isDeprecated: Boolean!\n"
    "  deprecationReason: String\n"
    "}\n"
    "\"A Directive can be adjacent to many parts of the GraphQL language, a "
    "__DirectiveLocation describes one such possible adjacencies.\"\n"
    "enum __DirectiveLocation {\n"
    "  \"Location adjacent to a query operation.\" QUERY\n"
    "  \"Location adjacent to a mutation operation.\" MUTATION\n"
    "  \"Location adjacent to a subscription operation.\" SUBSCRIPTION\n"
    "  \"Location adjacent to a field.\" FIELD\n"
    "  \"Location adjacent to a fragment definition.\" FRAGMENT_DEFINITION\n"
    "  \"Location adjacent to a fragment spread.\" FRAGMENT_SPREAD\n"
    "  \"Location adjacent to an inline fragment.\" INLINE_FRAGMENT\n"
    "  \"Location adjacent to a variable definition.\" VARIABLE_DEFINITION\n"
    "  \"Location adjacent to a schema definition.\" SCHEMA\n"
    "  \"Location adjacent to a scalar definition.\" SCALAR\n"
    "  \"Location adjacent to an object type definition.\" OBJECT\n"
    "  \"Location adjacent to a field definition.\" FIELD_DEFINITION\n"
    "  \"Location adjacent to an argument definition.\" ARGUMENT_DEFINITION\n"
    "  \"Location adjacent to an interface definition.\" INTERFACE\n"
    "  \"Location adjacent to a union definition.\" UNION\n"
    "  \"Location adjacent to an enum definition.\" ENUM\n"
    "  \"Location adjacent to an enum value definition.\" ENUM_VALUE\n"
    "  \"Location adjacent to an input object type definition.\" INPUT_OBJECT\n"
    "  \"Location adjacent to an input object field definition.\" INPUT_FIELD_DEFINITION\n"
    "  \"Location adjacent to a directive definition.\" DIRECTIVE_DEFINITION\n"
    "}\n";

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

static const char *kind_name(const gql_stype_t *t)
{
    switch (t->kind) {
    case K_SCALAR:
        return "SCALAR";
    case K_OBJECT:
        return "OBJECT";
    case K_INPUT:
        return "INPUT_OBJECT";
    case K_ENUM:
        return "ENUM";
    }
    return "SCALAR";
}

static json_t *named_ref(const gql_stype_t *t)
{
    return json_pack("{s:s,s:s}", "kind", kind_name(t), "name", t->name);
}

static json_t *tref(const gql_tref_t *t)
{
    if (t->kind == TY_NAMED) return named_ref(t->type);
    return json_pack("{s:s,s:n,s:o}", "kind", t->kind == TY_LIST ? "LIST" : "NON_NULL", "name",
                     "ofType", tref(t->of));
}

static json_t *input_values(const gql_sinput_t *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(
            a, json_pack("{s:s,s:o,s:o,s:o,s:b,s:o}", "name", v[i].name, "description",
                         str_or_null(v[i].desc), "type", tref(v[i].type), "defaultValue",
                         str_or_null(v[i].def_text), "isDeprecated", v[i].deprecated != NULL,
                         "deprecationReason", str_or_null(v[i].deprecated)));
    return a;
}

static int include_deprecated(json_t *args)
{
    return json_is_true(json_object_get(args, "includeDeprecated"));
}

/* The members of the array a whose isDeprecated is false (all with include). */
static json_t *filter_deprecated(json_t *a, int include)
{
    json_t *out = json_array();
    size_t i;
    json_t *m;
    json_array_foreach(a, i, m)
    {
        if (include || !json_is_true(json_object_get(m, "isDeprecated"))) json_array_append(out, m);
    }
    return out;
}

static json_t *type_member(const hr_gql_schema_t *s, const char *field, json_t *args,
                           json_t *parent)
{
    const char *name = json_string_value(json_object_get(parent, "name"));
    const gql_stype_t *t = name ? hr_gql_type_find(s, name) : NULL;
    if (!t) return json_incref(json_object_get(parent, field)); /* wrappers: kind, ofType */
    int dep = include_deprecated(args);
    if (strcmp(field, "description") == 0) return str_or_null(t->desc);
    if (strcmp(field, "specifiedByURL") == 0) return str_or_null(t->specified_by);
    if (strcmp(field, "fields") == 0) {
        if (t->kind != K_OBJECT) return NULL;
        json_t *a = json_array();
        for (size_t i = 0; i < t->nfields; i++) {
            const gql_sfield_t *f = &t->fields[i];
            if (f->deprecated && !dep) continue;
            json_array_append_new(a, json_pack("{s:s,s:o,s:o,s:o,s:b,s:o}", "name", f->name,
                                               "description", str_or_null(f->desc), "args",
                                               input_values(f->args, f->nargs), "type",
                                               tref(f->type), "isDeprecated", f->deprecated != NULL,
                                               "deprecationReason", str_or_null(f->deprecated)));
        }
        return a;
    }
    if (strcmp(field, "interfaces") == 0) return t->kind == K_OBJECT ? json_array() : NULL;
    if (strcmp(field, "possibleTypes") == 0) return NULL;
    if (strcmp(field, "enumValues") == 0) {
        if (t->kind != K_ENUM) return NULL;
        json_t *a = json_array();
        for (size_t i = 0; i < t->nvalues; i++) {
            const gql_senum_t *e = &t->values[i];
            if (e->deprecated && !dep) continue;
            json_array_append_new(a, json_pack("{s:s,s:o,s:b,s:o}", "name", e->name, "description",
                                               str_or_null(e->desc), "isDeprecated",
                                               e->deprecated != NULL, "deprecationReason",
                                               str_or_null(e->deprecated)));
        }
        return a;
    }
    if (strcmp(field, "inputFields") == 0) {
        if (t->kind != K_INPUT) return NULL;
        json_t *all = input_values(t->inputs, t->ninputs);
        json_t *a = filter_deprecated(all, dep);
        json_decref(all);
        return a;
    }
    if (strcmp(field, "isOneOf") == 0) return t->kind == K_INPUT ? json_boolean(t->oneof) : NULL;
    return json_incref(json_object_get(parent, field));
}

static json_t *schema_member(const hr_gql_schema_t *s, const char *field)
{
    if (strcmp(field, "description") == 0) return str_or_null(s->desc);
    if (strcmp(field, "queryType") == 0) return named_ref(s->query);
    if (strcmp(field, "mutationType") == 0) return s->mutation ? named_ref(s->mutation) : NULL;
    if (strcmp(field, "subscriptionType") == 0)
        return s->subscription ? named_ref(s->subscription) : NULL;
    if (strcmp(field, "types") == 0) {
        json_t *a = json_array();
        for (size_t i = 0; i < s->ntypes; i++) {
            const gql_stype_t *t = s->types[i];
            if (t->builtin && t->kind == K_SCALAR && !t->referenced) continue;
            json_array_append_new(a, named_ref(t));
        }
        return a;
    }
    if (strcmp(field, "directives") == 0) {
        json_t *a = json_array();
        for (size_t i = 0; i < s->ndirs; i++) {
            const gql_sdir_t *d = &s->dirs[i];
            json_t *locs = json_array();
            for (int k = 0; k < d->nlocations; k++)
                json_array_append_new(locs, json_string(hr_gql_dl_names[d->order[k]]));
            /* Directives are never deprecated here (graphql-js 16.15's experimental
             * isDeprecated on directives is answered, always false). */
            json_array_append_new(a, json_pack("{s:s,s:o,s:b,s:o,s:o,s:b,s:n}", "name", d->name,
                                               "description", str_or_null(d->desc), "isRepeatable",
                                               d->repeatable, "locations", locs, "args",
                                               input_values(d->args, d->nargs), "isDeprecated", 0,
                                               "deprecationReason"));
        }
        return a;
    }
    return NULL;
}

json_t *hr_gql_introspect(const hr_gql_schema_t *s, const gql_stype_t *parent_type,
                          const gql_sfield_t *field, json_t *args, json_t *parent)
{
    if (field == &s->schema_field) return json_object();
    if (field == &s->type_field) {
        const char *name = json_string_value(json_object_get(args, "name"));
        const gql_stype_t *t = name ? hr_gql_type_visible(s, name) : NULL;
        return t ? named_ref(t) : NULL;
    }
    const char *pt = parent_type->name;
    if (strcmp(pt, "__Schema") == 0) return schema_member(s, field->name);
    if (strcmp(pt, "__Type") == 0) return type_member(s, field->name, args, parent);
    if (strcmp(field->name, "args") == 0)
        return filter_deprecated(json_object_get(parent, "args"), include_deprecated(args));
    return json_incref(json_object_get(parent, field->name));
}
