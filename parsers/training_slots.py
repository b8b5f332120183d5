"""Invented names, places and values that fill the slots of the training templates.

Every person, school, council and service here is made up for this project, and
every address ends in `.example`. The lists are wide on purpose: the classifier
should learn the wording of each category, not a handful of names.
"""

from __future__ import annotations

BOY_NAMES = (
    "Alfie", "Ashton", "Bailey", "Callum", "Connor", "Darius", "Dexter", "Eli", "Ellis", "Ethan",
    "Ewan", "Finley", "Freddie", "Gethin", "Harrison", "Hassan", "Ibrahim", "Isaac", "Jake",
    "Jayden", "Joel", "Kai", "Kian", "Leon", "Logan", "Luca", "Mason", "Mateusz", "Milo", "Nathan",
    "Oliver", "Ollie", "Owain", "Reuben", "Riley", "Ronan", "Rory", "Sami", "Tariq", "Theo",
    "Tobias", "Tyler", "Zac", "Yusuf", "Kacper", "Arlo", "Bertie", "Caleb", "Dominik", "Jenson",
)
GIRL_NAMES = (
    "Aaliyah", "Amber", "Amira", "Ava", "Bethan", "Bronwen", "Chloe", "Daisy", "Darcy", "Eden",
    "Elsie", "Erin", "Esme", "Evie", "Faith", "Freya", "Grace", "Hana", "Harper", "Imogen",
    "Isla", "Jasmine", "Kacey", "Keira", "Layla", "Lexi", "Lily", "Maisie", "Maya", "Megan",
    "Mia", "Millie", "Nadia", "Niamh", "Olivia", "Phoebe", "Poppy", "Rhiannon", "Rosie",
    "Sienna", "Skye", "Sofia", "Summer", "Tilly", "Zara", "Zuzanna", "Aisha", "Lacey", "Willow",
)
LAST_NAMES = (
    "Ackroyd", "Alderbrook", "Ashcombe", "Banfield", "Bellweather", "Birtwhistle", "Blackmore",
    "Bramhall", "Brightling", "Carrow", "Chadderton", "Collinge", "Corvell", "Cresswick",
    "Dunmore", "Eastleigh", "Fairbrass", "Farthing", "Fenwick", "Gillow", "Greatorex",
    "Halewood", "Harrowby", "Hollins", "Ingledew", "Jaskolski", "Kaur", "Kettlewell", "Lambkin",
    "Larkworthy", "Leadbitter", "Marchbank", "Mellor", "Mossop", "Nakamura-Reed", "Nwosu",
    "Okonedo", "Orchardson", "Pargeter", "Pemberton-Hale", "Quennell", "Radclyffe", "Rainsford",
    "Rowntree", "Sandbach", "Scarisbrick", "Sheldrake", "Silverwood", "Stanier", "Tansley",
    "Thistlewood", "Tollemache", "Underhill", "Varley", "Wainwright", "Whitlock", "Winstanley",
    "Yardley", "Ziemba", "Abara", "Hussain", "O'Dowd", "McAlinden", "Penhaligon", "Trevithick",
)
ADULT_FIRST_NAMES = (
    "Alison", "Andrew", "Angela", "Bev", "Carys", "Claire", "Dan", "Deborah", "Dipak", "Emma",
    "Fiona", "Gareth", "Gemma", "Hannah", "Helen", "Ian", "Jo", "Joanne", "Karen", "Kate",
    "Lisa", "Louise", "Mark", "Martin", "Michelle", "Nadia", "Nicola", "Paul", "Priya", "Rachel",
    "Rebecca", "Richard", "Ruth", "Sam", "Sarah", "Simon", "Sophie", "Stuart", "Tom", "Vicky",
    "Yasmin", "Zoe", "Agnieszka", "Femi", "Rhys", "Siobhan", "Tendai", "Wendy",
)

SCHOOL_STEMS = (
    "Ashgrove", "Beckford", "Birchfield", "Brackenmoor", "Bramblewood", "Castlemead", "Cedar Hill",
    "Coppergate", "Daneshill", "Elmstead", "Fairhaven", "Fernbrook", "Foxley", "Glenthorne",
    "Greenacre", "Hallowmere", "Harcourt", "Hazelwick", "Highcliffe", "Holmleigh", "Kestrel Park",
    "Kingsbrook", "Lakeside", "Larkrise", "Lindenfield", "Longmeadow", "Marlowe", "Meadowcroft",
    "Millbrook", "Northgate", "Oakhurst", "Orchard Vale", "Pennywell", "Queensbury", "Redwell",
    "Ridgeway", "Rosehill", "St Bede's", "St Catherine's", "St Edmund's", "St Joseph's",
    "St Oswald's", "Stonebridge", "Summerfield", "Thornleigh", "Twyford", "Wellspring",
    "Westbury Park", "Whitecross", "Willowbank", "Woodlands", "Yewtree",
)
SCHOOL_KINDS = (
    "Primary School", "Academy", "High School", "CE Primary School", "Community College",
    "Junior School", "Infant School", "Secondary School", "Catholic High School", "School",
    "Primary Academy", "College", "C of E Academy", "Church of England Primary School",
    "Catholic Primary School", "Learning Centre", "Free School", "Grammar School",
)
COUNCILS = (
    "Ambridgeshire", "Barrowdale", "Calderwick", "Dunmorland", "Eastwold", "Fenmarsh", "Glenvale",
    "Hartlebury", "Kestonshire", "Lowmoor", "Marchfield", "Northwold", "Oxbridge Vale",
    "Penmarsh", "Ravensdale", "Stourland", "Thamesbury", "Wexcombe", "Wyreford", "Yarrowshire",
)

CONDITIONS = (
    "chronic fatigue syndrome", "ME/CFS", "severe anxiety", "anxiety and low mood",
    "emotionally based school avoidance", "EBSA", "Crohn's disease", "ulcerative colitis",
    "epilepsy", "an eating disorder", "anorexia nervosa", "acute lymphoblastic leukaemia",
    "long COVID", "a fractured femur", "recovery from spinal surgery", "depression", "OCD",
    "PoTS", "type 1 diabetes", "cystic fibrosis", "an acquired brain injury", "panic attacks",
    "chronic pain", "hypermobility syndrome", "functional neurological disorder", "migraines",
    "juvenile arthritis", "a heart condition", "sickle cell disease", "social anxiety",
    "selective mutism", "autism and high anxiety", "post-viral fatigue", "kidney failure",
)
# Physical conditions read naturally after "treatment for".
TREATMENTS = (
    "chemotherapy", "dialysis", "a course of radiotherapy", "an intensive feeding programme",
    "physiotherapy after surgery", "IV antibiotics", "a stem cell transplant",
)

SUPPORT_ROLES = (
    ("Consultant Paediatrician", "{trust} NHS Foundation Trust", "nhs.example"),
    ("Community Paediatrician", "{trust} Community Health Services", "nhs.example"),
    ("School Nurse", "{council} 0-19 Service", "nhs.example"),
    ("CAMHS Practitioner", "{council} CAMHS", "nhs.example"),
    ("Clinical Psychologist", "{trust} CAMHS", "nhs.example"),
    ("Mental Health Nurse", "CAMHS Eating Disorders Team", "nhs.example"),
    ("Specialist Epilepsy Nurse", "{trust} Children's Hospital", "nhs.example"),
    ("Clinical Nurse Specialist", "Paediatric Oncology, {trust} Hospital", "nhs.example"),
    ("GP", "{stem} Medical Practice", "nhs.example"),
    ("Occupational Therapist", "Children's Therapy Service", "nhs.example"),
    ("Early Help Practitioner", "{council} Early Help", "gov.example"),
    ("Family Support Worker", "{council} Family Hub", "gov.example"),
    ("Social Worker", "{council} Children's Social Care", "gov.example"),
    ("Educational Psychologist", "{council} Educational Psychology Service", "gov.example"),
    ("Youth Worker", "{council} Youth Service", "gov.example"),
    ("Mental Health Support Team Practitioner", "MHST {council}", "nhs.example"),
    ("Children's Wellbeing Practitioner", "{trust} CAMHS", "nhs.example"),
    ("Hospital Play Specialist", "{trust} Children's Ward", "nhs.example"),
)
SCHOOL_ROLES = (
    "Attendance Officer", "Attendance Lead", "SENCo", "Head of Year {yearnum}",
    "Pastoral Lead", "Deputy Headteacher", "Assistant Head (Inclusion)", "School Business Manager",
    "Office Manager", "Designated Safeguarding Lead", "Headteacher", "Inclusion Manager",
    "Student Support Officer", "Learning Mentor", "Family Liaison Officer", "Year {yearnum} Tutor",
)
PANEL_ROLES = (
    "Head of Virtual School", "Education Welfare Manager", "Inclusion Officer",
    "Principal Educational Psychologist", "Medical Needs Teaching Service Lead",
    "Early Help Locality Manager", "CAMHS representative, CCAS panel", "Access and Inclusion Lead",
    "Senior Education Welfare Officer", "Hospital Education Service Manager",
    "SEND Casework Manager", "Alternative Provision Coordinator",
)
PARENT_RELATIONS = (
    ("mum", "I'm {his} mum"), ("mum", "I am {his} mother"), ("dad", "I'm {his} dad"),
    ("dad", "I am {his} father"), ("carer", "I am {his} foster carer"),
    ("nan", "I'm {his} nan and {he} lives with me"), ("carer", "I am {his} kinship carer"),
    ("mum", "I'm {his} mam"), ("stepdad", "I'm {his} stepdad"),
    ("grandad", "I'm {his} grandad and have parental responsibility"),
)
SERVICES = (
    "the Medical Needs Teaching Service", "the Hospital Education Service", "online tuition",
    "home tuition", "the tuition service", "the outreach team", "virtual lessons",
    "the alternative provision", "the hospital school",
)
PANEL_ACTIONS = (
    "contact the family to arrange a home visit",
    "liaise with school about a phased return",
    "request updated medical evidence from the paediatrician",
    "chase the CAMHS referral",
    "check whether tuition hours can be increased to ten a week",
    "arrange a consultation with the educational psychologist",
    "share the IHCP with the tuition provider",
    "speak to the SENCo about a reduced timetable",
    "find out whether a laptop can be provided for online lessons",
    "confirm the hospital school's dual registration",
    "write to parents with the panel's decision",
    "set up a multi-agency meeting",
    "check attendance figures with the school",
    "ask the GP for a supporting letter",
    "refer to early help for family support",
)
PANEL_OUTCOMES = (
    "Done. I visited on {date} and mum is happy with the plan.",
    "Completed: the school have agreed a phased return starting on {date}.",
    "This is still outstanding. I have chased twice and will bring it back to the next panel.",
    "Complete, so please mark it as closed on the action log.",
    "Partly done: I have left messages for the consultant but not heard back yet.",
    "All sorted. The letter went out on {date}.",
    "I've spoken to the SENCo and a meeting is booked for {date}.",
    "The evidence has now been received and is attached for the panel.",
    "Unable to complete as the family have not responded to three calls and a letter.",
    "Done, tuition increases to {hours} hours from next week.",
    "I met with school on {date}; they will share attendance data fortnightly.",
    "The laptop has been delivered and {first} logged on for the first lesson today.",
)
MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "September", "October",
    "November", "December",
)
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")
