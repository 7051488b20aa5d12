-- source: public.orders
CREATE TRIGGER "herald_capture_insert_orders" AFTER INSERT ON "orders" FOR EACH ROW BEGIN
  INSERT INTO herald_log (source, op, new) VALUES ('public.orders', 'INSERT',
  json_object(
    'id', iif(typeof(NEW."id") = 'blob', hex(NEW."id"), NEW."id"),
    'status', iif(typeof(NEW."status") = 'blob', hex(NEW."status"), NEW."status"),
    'total', iif(typeof(NEW."total") = 'blob', hex(NEW."total"), NEW."total"),
    'meta', CASE WHEN typeof(NEW."meta") = 'blob' THEN hex(NEW."meta") WHEN json_valid(NEW."meta") THEN json(NEW."meta") ELSE NEW."meta" END));
END;
CREATE TRIGGER "herald_capture_update_orders" AFTER UPDATE ON "orders" FOR EACH ROW BEGIN
  INSERT INTO herald_log (source, op, old, new) VALUES ('public.orders', 'UPDATE',
  json_object(
    'id', iif(typeof(OLD."id") = 'blob', hex(OLD."id"), OLD."id"),
    'status', iif(typeof(OLD."status") = 'blob', hex(OLD."status"), OLD."status"),
    'total', iif(typeof(OLD."total") = 'blob', hex(OLD."total"), OLD."total"),
    'meta', CASE WHEN typeof(OLD."meta") = 'blob' THEN hex(OLD."meta") WHEN json_valid(OLD."meta") THEN json(OLD."meta") ELSE OLD."meta" END),
  json_object(
    'id', iif(typeof(NEW."id") = 'blob', hex(NEW."id"), NEW."id"),
    'status', iif(typeof(NEW."status") = 'blob', hex(NEW."status"), NEW."status"),
    'total', iif(typeof(NEW."total") = 'blob', hex(NEW."total"), NEW."total"),
    'meta', CASE WHEN typeof(NEW."meta") = 'blob' THEN hex(NEW."meta") WHEN json_valid(NEW."meta") THEN json(NEW."meta") ELSE NEW."meta" END));
END;
CREATE TRIGGER "herald_capture_delete_orders" AFTER DELETE ON "orders" FOR EACH ROW BEGIN
  INSERT INTO herald_log (source, op, old) VALUES ('public.orders', 'DELETE',
  json_object(
    'id', iif(typeof(OLD."id") = 'blob', hex(OLD."id"), OLD."id"),
    'status', iif(typeof(OLD."status") = 'blob', hex(OLD."status"), OLD."status"),
    'total', iif(typeof(OLD."total") = 'blob', hex(OLD."total"), OLD."total"),
    'meta', CASE WHEN typeof(OLD."meta") = 'blob' THEN hex(OLD."meta") WHEN json_valid(OLD."meta") THEN json(OLD."meta") ELSE OLD."meta" END));
END;
DROP TRIGGER IF EXISTS "herald_capture_insert_orders";
DROP TRIGGER IF EXISTS "herald_capture_update_orders";
DROP TRIGGER IF EXISTS "herald_capture_delete_orders";
