"""The second held-out relations set: five schemas, every foreign key left undeclared.

university (text and composite keys, a self-pair of prerequisites), ticketing (assignee and
reporter point at different tables of overlapping ids), inventory (text keys: warehouse codes,
SKUs, a self-reference), blog (posts.author -> users.username, a text key) and a Chinook-like
music store in CamelCase (SupportRepId -> Employee.EmployeeId, ReportsTo). Decoys: status codes,
years, quantities, counts, ZIP codes and small ints contained in small id ranges.
"""

from __future__ import annotations

from heldout2 import rel_more
from heldout2.rel_base import Schema

SEED = 41_2026


def university() -> Schema:
    s = Schema("uni", SEED + 1)
    r = s.rng
    codes = ["CS", "MATH", "PHYS", "CHEM", "BIO", "HIST", "ECON", "LING"]
    d = s.table("departments", ["dept_code"])
    d.add("dept_code", "text", codes)
    d.add("dept_name", "text", [f"Department of {c.title()}" for c in codes])
    d.add("building_no", "int", [r.randint(1, 12) for _ in codes])
    terms = [f"{y}{t}" for y in range(2019, 2025) for t in ("FA", "SP")]
    t = s.table("terms", ["term_code"])
    t.add("term_code", "text", terms)
    t.add("year", "int", [int(x[:4]) for x in terms])
    ins = s.table("instructors", ["instructor_id"])
    ids = ins.add("instructor_id", "int", list(range(1, 61)))
    ins.add("dept_code", "text", s.refs(codes, 60))
    ins.add("hired_year", "int", [r.randint(1990, 2023) for _ in ids])
    st = s.table("students", ["student_id"])
    sids = st.add("student_id", "int", list(range(10_001, 10_801)))
    st.add("student_no", "text", [f"S{i:06d}" for i in sids])
    st.add("advisor_id", "int", s.refs(ids, 800, nulls=0.1))
    st.add("major_dept", "text", s.refs(codes, 800, skew=True))
    st.add("enrolled_year", "int", [r.randint(2019, 2024) for _ in sids])
    st.add("credits_earned", "int", [r.randint(0, 60) for _ in sids])
    c = s.table("courses", ["course_code"])
    ccodes = c.add(
        "course_code", "text", sorted({f"{x}{n}" for x in codes for n in (101, 102, 201, 305)})
    )
    c.add("dept_code", "text", [x.rstrip("0123456789") for x in ccodes])
    c.add("credits", "int", [r.choice([3, 4, 5, 6]) for _ in ccodes])
    c.add("coordinator", "int", s.refs(ids, len(ccodes)))
    sec = s.table("course_sections", ["section_id"])
    secids = sec.add("section_id", "int", list(range(1, 301)))
    sec.add("course_code", "text", s.refs(ccodes, 300))
    sec.add("term_code", "text", s.refs(terms, 300))
    sec.add("instructor_id", "int", s.refs(ids, 300))
    sec.add("capacity", "int", [r.choice([20, 30, 40, 60]) for _ in secids])
    e = s.table("enrollments", ["student_id", "section_id"])
    pairs = sorted({(r.choice(sids), r.choice(secids)) for _ in range(3000)})
    e.add("student_id", "int", [p[0] for p in pairs])
    e.add("section_id", "int", [p[1] for p in pairs])
    e.add("attempt", "int", [r.choice([1, 1, 1, 2, 3]) for _ in pairs])
    e.add("grade", "text", [r.choice(["A", "B", "C", "D", "F", None]) for _ in pairs])
    p = s.table("prerequisites")
    prereq = sorted({(a, b) for a in ccodes for b in ccodes if a[-3] > b[-3] and r.random() < 0.08})
    p.add("course_code", "text", [x[0] for x in prereq])
    p.add("requires_course_code", "text", [x[1] for x in prereq])
    for child, col, parent, key in [
        ("instructors", "dept_code", "departments", "dept_code"),
        ("students", "advisor_id", "instructors", "instructor_id"),
        ("students", "major_dept", "departments", "dept_code"),
        ("courses", "dept_code", "departments", "dept_code"),
        ("courses", "coordinator", "instructors", "instructor_id"),
        ("course_sections", "course_code", "courses", "course_code"),
        ("course_sections", "term_code", "terms", "term_code"),
        ("course_sections", "instructor_id", "instructors", "instructor_id"),
        ("enrollments", "student_id", "students", "student_id"),
        ("enrollments", "section_id", "course_sections", "section_id"),
        ("prerequisites", "course_code", "courses", "course_code"),
        ("prerequisites", "requires_course_code", "courses", "course_code"),
    ]:
        s.fk(child, col, parent, key)
    return s


def ticketing() -> Schema:
    s = Schema("helpdesk", SEED + 2)
    r = s.rng
    teams = s.table("teams")
    team_ids = teams.add("id", "int", list(range(1, 7)))
    teams.add("name", "text", ["Billing", "Tech", "Onboarding", "Sales", "Legal", "VIP"])
    ag = s.table("agents")
    agent_ids = ag.add("id", "int", list(range(1, 26)))
    ag.add("name", "text", [f"agent{i}" for i in agent_ids])
    ag.add("team_id", "int", s.refs(team_ids, 25))
    us = s.table("users")
    user_ids = us.add("id", "int", list(range(1, 401)))
    us.add("username", "text", [f"user_{i}" for i in user_ids])
    us.add("zip", "text", [f"{r.randint(10000, 99999)}" for _ in user_ids])
    qs = s.table("queues")
    queue_ids = qs.add("id", "int", list(range(1, 9)))
    qs.add("name", "text", [f"queue {i}" for i in queue_ids])
    sla = s.table("sla_policies")
    sla.add("code", "text", ["P1", "P2", "P3", "P4"])
    sla.add("hours", "int", [4, 8, 24, 72])
    tk = s.table("tickets")
    n = 1500
    tids = tk.add("id", "int", list(range(1, n + 1)))
    tk.add("reporter", "int", s.refs(user_ids, n, skew=True))
    tk.add("assignee", "int", s.refs(agent_ids, n, nulls=0.15))
    tk.add("queue_id", "int", s.refs(queue_ids, n))
    tk.add("priority", "text", s.refs(["P1", "P2", "P3", "P4"], n))
    tk.add("status_code", "int", [r.randint(1, 5) for _ in tids])
    tk.add("reopen_count", "int", [r.choice([0, 0, 0, 1, 2]) for _ in tids])
    tk.add("opened_year", "int", [r.choice([2023, 2024, 2025]) for _ in tids])
    cm = s.table("ticket_comments")
    m = 4000
    cm.add("id", "int", list(range(1, m + 1)))
    cm.add("ticket_id", "int", s.refs(tids, m))
    cm.add("author_user_id", "int", s.refs(user_ids, m, nulls=0.5))
    cm.add("author_agent_id", "int", s.refs(agent_ids, m, nulls=0.5))
    cm.add("word_count", "int", [r.randint(1, 300) for _ in range(m)])
    tags = s.table("tags")
    tag_ids = tags.add("id", "int", list(range(1, 41)))
    tags.add("label", "text", [f"tag-{i}" for i in tag_ids])
    tt = s.table("ticket_tags")
    pairs = sorted({(r.choice(tids), r.choice(tag_ids)) for _ in range(2500)})
    tt.add("ticket_id", "int", [p[0] for p in pairs])
    tt.add("tag_id", "int", [p[1] for p in pairs])
    for child, col, parent, key in [
        ("agents", "team_id", "teams", "id"),
        ("tickets", "reporter", "users", "id"),
        ("tickets", "assignee", "agents", "id"),
        ("tickets", "queue_id", "queues", "id"),
        ("tickets", "priority", "sla_policies", "code"),
        ("ticket_comments", "ticket_id", "tickets", "id"),
        ("ticket_comments", "author_user_id", "users", "id"),
        ("ticket_comments", "author_agent_id", "agents", "id"),
        ("ticket_tags", "ticket_id", "tickets", "id"),
        ("ticket_tags", "tag_id", "tags", "id"),
    ]:
        s.fk(child, col, parent, key)
    return s


def schemas() -> list[Schema]:
    return [university(), ticketing(), *rel_more.schemas(SEED)]
