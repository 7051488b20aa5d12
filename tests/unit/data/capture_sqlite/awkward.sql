-- source: "public"."My ""Odd"" Table's.name"
CREATE TRIGGER "herald_capture_insert_myoddtablesname_7363f9ab" AFTER INSERT ON "My ""Odd"" Table's.name" FOR EACH ROW BEGIN
  INSERT INTO herald_log (source, op, new) VALUES ('"public"."My ""Odd"" Table''s.name"', 'INSERT',
  json_object(
    'Id', iif(typeof(NEW."Id") = 'blob', hex(NEW."Id"), NEW."Id"),
    'it''s', iif(typeof(NEW."it's") = 'blob', hex(NEW."it's"), NEW."it's"),
    'a "quoted" col', CASE WHEN typeof(NEW."a ""quoted"" col") = 'blob' THEN hex(NEW."a ""quoted"" col") WHEN json_valid(NEW."a ""quoted"" col") THEN json(NEW."a ""quoted"" col") ELSE NEW."a ""quoted"" col" END,
    'x.y', iif(typeof(NEW."x.y") = 'blob', hex(NEW."x.y"), NEW."x.y")));
END;
CREATE TRIGGER "herald_capture_update_myoddtablesname_7363f9ab" AFTER UPDATE ON "My ""Odd"" Table's.name" FOR EACH ROW BEGIN
  INSERT INTO herald_log (source, op, old, new) VALUES ('"public"."My ""Odd"" Table''s.name"', 'UPDATE',
  json_object(
    'Id', iif(typeof(OLD."Id") = 'blob', hex(OLD."Id"), OLD."Id"),
    'it''s', iif(typeof(OLD."it's") = 'blob', hex(OLD."it's"), OLD."it's"),
    'a "quoted" col', CASE WHEN typeof(OLD."a ""quoted"" col") = 'blob' THEN hex(OLD."a ""quoted"" col") WHEN json_valid(OLD."a ""quoted"" col") THEN json(OLD."a ""quoted"" col") ELSE OLD."a ""quoted"" col" END,
    'x.y', iif(typeof(OLD."x.y") = 'blob', hex(OLD."x.y"), OLD."x.y")),
  json_object(
    'Id', iif(typeof(NEW."Id") = 'blob', hex(NEW."Id"), NEW."Id"),
    'it''s', iif(typeof(NEW."it's") = 'blob', hex(NEW."it's"), NEW."it's"),
    'a "quoted" col', CASE WHEN typeof(NEW."a ""quoted"" col") = 'blob' THEN hex(NEW."a ""quoted"" col") WHEN json_valid(NEW."a ""quoted"" col") THEN json(NEW."a ""quoted"" col") ELSE NEW."a ""quoted"" col" END,
    'x.y', iif(typeof(NEW."x.y") = 'blob', hex(NEW."x.y"), NEW."x.y")));
END;
CREATE TRIGGER "herald_capture_delete_myoddtablesname_7363f9ab" AFTER DELETE ON "My ""Odd"" Table's.name" FOR EACH ROW BEGIN
  INSERT INTO herald_log (source, op, old) VALUES ('"public"."My ""Odd"" Table''s.name"', 'DELETE',
  json_object(
    'Id', iif(typeof(OLD."Id") = 'blob', hex(OLD."Id"), OLD."Id"),
    'it''s', iif(typeof(OLD."it's") = 'blob', hex(OLD."it's"), OLD."it's"),
    'a "quoted" col', CASE WHEN typeof(OLD."a ""quoted"" col") = 'blob' THEN hex(OLD."a ""quoted"" col") WHEN json_valid(OLD."a ""quoted"" col") THEN json(OLD."a ""quoted"" col") ELSE OLD."a ""quoted"" col" END,
    'x.y', iif(typeof(OLD."x.y") = 'blob', hex(OLD."x.y"), OLD."x.y")));
END;
DROP TRIGGER IF EXISTS "herald_capture_insert_myoddtablesname_7363f9ab";
DROP TRIGGER IF EXISTS "herald_capture_update_myoddtablesname_7363f9ab";
DROP TRIGGER IF EXISTS "herald_capture_delete_myoddtablesname_7363f9ab";
