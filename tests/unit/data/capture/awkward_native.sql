-- source: "My ""Schema"""."it's.a table"
CREATE TRIGGER herald_capture_insert AFTER INSERT ON "My ""Schema"""."it's.a table" REFERENCING NEW TABLE AS herald_new FOR EACH STATEMENT EXECUTE FUNCTION herald.capture_native('"My ""Schema"""."it''s.a table"');
CREATE TRIGGER herald_capture_update AFTER UPDATE ON "My ""Schema"""."it's.a table" FOR EACH ROW EXECUTE FUNCTION herald.capture_native('"My ""Schema"""."it''s.a table"');
CREATE TRIGGER herald_capture_delete AFTER DELETE ON "My ""Schema"""."it's.a table" REFERENCING OLD TABLE AS herald_old FOR EACH STATEMENT EXECUTE FUNCTION herald.capture_native('"My ""Schema"""."it''s.a table"');
DROP TRIGGER IF EXISTS herald_capture_insert ON "My ""Schema"""."it's.a table";
DROP TRIGGER IF EXISTS herald_capture_update ON "My ""Schema"""."it's.a table";
DROP TRIGGER IF EXISTS herald_capture_delete ON "My ""Schema"""."it's.a table";
